/**
 * The detector scripts run as a Redis Function (loaded once per node, definitions kept between
 * calls), as scripts where Functions are missing or denied, and come back after FUNCTION FLUSH;
 * what they keep between calls (parsed parameters, numbers) stays bounded.
 */
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { checkStep, resolveDetectors } from '../../src/core/detectors/index.js'
import { RedisDetectorStore } from '../../src/store/detectors/redis.js'
import {
  type RedisServer,
  scriptsOnlyClient,
  startRedis,
  startRedisWithoutFunctions,
} from '../helpers/redis-server.js'

let server: RedisServer
beforeAll(async () => {
  server = await startRedis()
})
afterAll(async () => {
  await server.stop()
})

const loops = resolveDetectors({ loop: { alertAt: 5, throttleAt: 0, blockAt: 0 }, spend: false }).base
const again = checkStep(loops, { prompt: 'the same prompt', isKey: true })!
const failed = {
  address: '192.0.2.9',
  windowMs: 3_600_000,
  alertAt: 3,
  addressesAt: 0,
  prefixAddressesAt: 0,
  maxPrefixes: 10,
}

/** The counts of script commands that ran, from INFO commandstats. */
async function scriptCommands(client: Redis): Promise<Record<string, number>> {
  const out: Record<string, number> = {}
  for (const m of (await client.info('commandstats')).matchAll(/cmdstat_(fcall|evalsha|eval):calls=(\d+)/g)) {
    out[m[1]!] = Number(m[2])
  }
  return out
}

/** Twelve checks of one prompt, then three failed keys: the loop alerts at 5, stuffing at 3. */
async function decide(store: RedisDetectorStore, subject: string) {
  const raised = []
  for (let i = 0; i < 12; i++) raised.push(...(await store.check(subject, again)).raised)
  const stuffing = []
  for (let i = 0; i < 3; i++) stuffing.push(...(await store.failure(failed)))
  return { raised, stuffing }
}

const expected = {
  raised: [{ detector: 'loop', level: 1, value: 5, threshold: 5 }],
  stuffing: [{ detector: 'stuffing', level: 1, value: 3, threshold: 3, addresses: ['192.0.2.9'] }],
}

describe('detector scripts as a Redis Function', () => {
  it('are loaded as a library and called with FCALL, not EVALSHA', async () => {
    const client = new Redis(server.url)
    await client.call('FUNCTION', 'FLUSH')
    await client.config('RESETSTAT')
    const store = new RedisDetectorStore({ client, prefix: 'fn1:' })
    expect(await decide(store, 'key:a')).toEqual(expected)
    const libraries = JSON.stringify(await client.call('FUNCTION', 'LIST'))
    expect(libraries).toMatch(/sluice_det_steps_/)
    // Failed keys are steps of the same function (lua/failure.lua), batched with the others.
    expect(libraries).not.toMatch(/sluice_det_failure_/)
    const counts = await scriptCommands(client)
    expect(counts.fcall).toBeGreaterThanOrEqual(15)
    expect(counts.evalsha ?? 0).toBe(0)
    client.disconnect()
  })

  it('FUNCTION FLUSH between calls: the library is loaded again, nothing counted twice', async () => {
    const client = new Redis(server.url)
    const admin = new Redis(server.url)
    await admin.config('RESETSTAT')
    const store = new RedisDetectorStore({ client, prefix: 'fn2:' })
    const raised = []
    for (let round = 0; round < 5; round++) {
      // Three checks at once (one script call), then the library goes.
      const outs = await Promise.all(Array.from({ length: 3 }, () => store.check('key:f', again)))
      raised.push(...outs.flatMap((o) => o.raised))
      await admin.call('FUNCTION', 'FLUSH')
    }
    // 15 checks: one alert, at the 5th, as without the flushes.
    expect(raised).toEqual(expected.raised)
    const stats = await admin.info('commandstats')
    expect(Number(/cmdstat_function\|load:calls=(\d+)/.exec(stats)?.[1])).toBeGreaterThanOrEqual(4)
    client.disconnect()
    admin.disconnect()
  })

  it('keeps what it parsed between calls bounded: thousands of parameter texts, little memory', async () => {
    const client = new Redis(server.url)
    await client.call('FUNCTION', 'FLUSH')
    const vm = async () => Number(/used_memory_vm_functions:(\d+)/.exec(await client.info('memory'))![1])
    const first = new RedisDetectorStore({ client, prefix: 'fn3:' })
    expect((await first.check('key:m', again)).raised).toEqual([])
    const before = await vm()
    // 4,000 distinct loop parameter texts and ttls (a check each), 128 a script call.
    for (let round = 0; round < 32; round++) {
      const steps = Array.from({ length: 125 }, (_, i) => {
        const n = round * 125 + i
        const set = resolveDetectors({
          loop: { alertAt: 1000, throttleAt: 0, blockAt: 0, windowMs: 60_000 + n },
          spend: false,
        })
        const store = new RedisDetectorStore({ client, prefix: 'fn3:', ttlMs: 86_400_000 + n })
        return store.check(`key:m${n % 7}`, checkStep(set.base, { prompt: `p${n}`, isKey: true })!)
      })
      await Promise.all(steps)
    }
    // Kept without a bound, the texts and their parsed numbers would be well over a megabyte.
    expect((await vm()) - before).toBeLessThan(400_000)
    // And the first parameters, long forgotten, still decide as before.
    const raised = []
    for (let i = 0; i < 4; i++) raised.push(...(await first.check('key:m', again)).raised)
    expect(raised).toEqual(expected.raised)
    client.disconnect()
  })
})

describe('detector scripts where Functions are not available', () => {
  it('a Redis without FCALL and FUNCTION (before 7.0): scripts (EVALSHA), the same decisions', async () => {
    const old = await startRedisWithoutFunctions()
    const client = new Redis(old.url)
    const store = new RedisDetectorStore({ client, prefix: 'old:' })
    expect(await decide(store, 'key:o')).toEqual(expected)
    const counts = await scriptCommands(client)
    expect((counts.evalsha ?? 0) + (counts.eval ?? 0)).toBeGreaterThanOrEqual(15)
    expect(counts.fcall).toBeUndefined()
    client.disconnect()
    await old.stop()
  })

  it('a user whose ACL denies Functions: scripts, the same decisions', async () => {
    const admin = new Redis(server.url)
    await admin.call('FUNCTION', 'FLUSH')
    const client = await scriptsOnlyClient(server, 'det-scripts-only')
    const store = new RedisDetectorStore({ client, prefix: 'acl:' })
    expect(await decide(store, 'key:u')).toEqual(expected)
    expect(JSON.stringify(await admin.call('FUNCTION', 'LIST'))).not.toMatch(/sluice_det_/)
    client.disconnect()
    await admin.call('ACL', 'DELUSER', 'det-scripts-only')
    admin.disconnect()
  })
})
