/**
 * The detector stores' contract: the same steps give the same outcomes in memory and in a real
 * redis-server, a level is raised once across concurrent callers, state is bounded and expires,
 * and clear / allow / seed work.
 */
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BLOCK, checkStep, recordStep, resolveDetectors, THROTTLE } from '../../src/core/detectors/index.js'
import { MemoryDetectorStore } from '../../src/store/detectors/memory.js'
import { RedisDetectorStore } from '../../src/store/detectors/redis.js'
import type { DetectorStore } from '../../src/store/detectors/types.js'
import { type RedisServer, startRedis } from '../helpers/redis-server.js'

let redis: RedisServer
let client: Redis
let n = 0
beforeAll(async () => {
  redis = await startRedis()
  client = new Redis(redis.url)
})
afterAll(async () => {
  client.disconnect()
  await redis.stop()
})

const kinds: [string, () => DetectorStore][] = [
  ['memory', () => new MemoryDetectorStore()],
  ['redis', () => new RedisDetectorStore({ client, prefix: `t${process.pid}-${++n}:` })],
]

const set = (input = {}) => resolveDetectors(input).base
/** A failed-key step with the gateway-wide count out of reach. */
const failed = {
  address: '',
  windowMs: 3_600_000,
  alertAt: 1000,
  addressesAt: 0,
  prefixAddressesAt: 10,
  maxPrefixes: 100,
}

describe.each(kinds)('%s detector store', (_kind, make) => {
  it('a loop of identical prompts: alert/throttle at the count, then the throttle refuses', async () => {
    const store = make()
    const s = set({ loop: { alertAt: 4, throttleAt: 4, blockAt: 0, throttlePerMinute: 1 }, spend: false })
    const step = checkStep(s, { prompt: 'Again and again', isKey: false })!
    const outs = []
    for (let i = 0; i < 6; i++) outs.push(await store.check('key:a', step))
    expect(outs.flatMap((o) => o.raised)).toEqual([
      { detector: 'loop', level: THROTTLE, value: 4, threshold: 4 },
    ])
    expect(outs.slice(0, 4).every((o) => o.refused === undefined)).toBe(true)
    // The minute's one request went to the 4th (or, across a minute boundary, the 5th).
    expect(outs.slice(4).some((o) => o.refused?.detector === 'loop')).toBe(true)
    // Another subject is untouched.
    expect((await store.check('key:b', step)).refused).toBeUndefined()
    expect((await store.inspect('key:a')).flags.loop?.lv).toBe(THROTTLE)
  })

  it('near-identical prompts count with the near factor', async () => {
    const store = make()
    const s = set({
      loop: { alertAt: 4, throttleAt: 0, blockAt: 0, nearDistance: 8, nearFactor: 1.5 },
      spend: false,
    })
    const base =
      'summarise the attached quarterly report and list the three biggest risks for the board today'
    const raised = []
    for (let i = 0; i < 8; i++) {
      raised.push(
        ...(await store.check('key:n', checkStep(s, { prompt: `${base} run ${i}`, isKey: false })!)).raised,
      )
    }
    expect(raised).toHaveLength(1)
    expect(raised[0]).toMatchObject({ detector: 'loop', level: 1, threshold: 6 })
  })

  it('one key from 30 addresses concurrently: exactly one alert, one block', async () => {
    const store = make()
    const s = set({ sharedKey: { alertAt: 10, blockAt: 20 }, loop: false, spend: false })
    const outs = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        store.check('key:shared', checkStep(s, { address: `203.0.113.${i}`, isKey: true })!),
      ),
    )
    const raised = outs.flatMap((o) => o.raised)
    expect(raised.map((r) => r.level).sort()).toEqual([1, BLOCK])
    expect(raised.find((r) => r.level === 1)!.addresses).toHaveLength(10)
    expect(outs.filter((o) => o.refused?.level === BLOCK)).toHaveLength(11)
    const view = await store.inspect('key:shared')
    expect(view.addresses.length).toBeLessThanOrEqual(21)
    await store.clear('key:shared', 'sharedKey')
    expect((await store.inspect('key:shared')).flags).toEqual({})
    expect(
      (await store.check('key:shared', checkStep(s, { address: '203.0.113.1', isKey: true })!)).refused,
    ).toBeUndefined()
  })

  it('a threshold learned from each key: usually 3 addresses alerts once at a jump to 15, usually 30 does not', async () => {
    const store = make()
    const W = 300
    const s = set({
      sharedKey: { alertAt: 100, windowMs: W, factor: 3, minAddresses: 8, warmup: 3 },
      loop: false,
      spend: false,
    })
    const use = (subject: string, addresses: string[]) =>
      Promise.all(addresses.map((address) => store.check(subject, checkStep(s, { address, isKey: true })!)))
    const range = (n: number, net: string) => Array.from({ length: n }, (_, i) => `${net}.${i}`)
    // Four windows of history (the store's clock), each key from its usual addresses.
    const raised = []
    for (let w = 0; w < 4; w++) {
      const now = await store.now()
      await new Promise((r) => setTimeout(r, W - (now % W) + 20))
      for (const o of [
        ...(await use('key:few', range(3, '192.0.2'))),
        ...(await use('key:many', range(30, '198.51.100'))),
      ])
        raised.push(...o.raised)
    }
    expect(raised).toEqual([])
    const few = await store.inspect('key:few')
    expect(few.usualAddresses).toBeGreaterThan(2)
    expect(few.usualAddresses).toBeLessThanOrEqual(3)
    expect((await store.inspect('key:many')).usualAddresses).toBeGreaterThan(20)
    // The jump: 15 new addresses at once for both keys.
    const jump = [
      ...(await use('key:few', range(15, '203.0.113'))),
      ...(await use('key:many', range(15, '203.0.114'))),
    ]
    const alerts = jump.flatMap((o) => o.raised)
    expect(alerts).toHaveLength(1)
    expect(alerts[0]).toMatchObject({ detector: 'sharedKey', level: 1 })
    expect(alerts[0]!.threshold).toBeGreaterThanOrEqual(8)
    expect(alerts[0]!.threshold).toBeLessThanOrEqual(9)
    expect(alerts[0]!.value).toBe(alerts[0]!.threshold)
    expect(jump.every((o) => o.refused === undefined)).toBe(true)
    // Clearing the key forgets its history too (a new normal is learned afresh).
    await store.clear('key:few', 'sharedKey')
    expect((await store.inspect('key:few')).usualAddresses).toBe(0)
  })

  it('a seeded baseline: a sustained spike holds the subject to its baseline until cleared', async () => {
    const store = make()
    const s = set({
      spend: { bucketMs: 60_000, sustainMs: 60_000, floorPerMinute: 10, factor: 10 },
      loop: false,
    })
    await store.seed('key:spend', 100)
    expect((await store.inspect('key:spend')).baseline).toBe(100)
    const raised = []
    for (let i = 0; i < 12; i++)
      raised.push(...(await store.record('key:spend', recordStep(s, { tokens: 100, usd: 0 }, 0.1)!)))
    // 1,000 tokens in the bucket is 10× the baseline of 100 (unless the bucket turned mid-way).
    const held = raised.length === 1
    if (held) {
      expect(raised[0]).toMatchObject({ detector: 'spend', level: THROTTLE, threshold: 1000 })
      expect((await store.check('key:spend', checkStep(s, { isKey: true })!)).refused?.detector).toBe('spend')
      await store.clear('key:spend', 'spend')
      expect((await store.check('key:spend', checkStep(s, { isKey: true })!)).refused).toBeUndefined()
    }
    expect(held || raised.length === 0).toBe(true)
  })

  it('shadow mode: flags are raised and reported, never enforced', async () => {
    const store = make()
    const s = set({ shadow: true, loop: { alertAt: 2, throttleAt: 2, blockAt: 3 }, spend: false })
    const step = checkStep(s, { prompt: 'p', isKey: false })!
    const outs = []
    for (let i = 0; i < 5; i++) outs.push(await store.check('key:shadow', step))
    expect(outs.flatMap((o) => o.raised).map((r) => r.level)).toEqual([THROTTLE, BLOCK])
    expect(outs.every((o) => o.refused === undefined)).toBe(true)
  })

  it('an allow-listed subject is not observed', async () => {
    const store = make()
    const s = set({ loop: { alertAt: 2, throttleAt: 2, blockAt: 0 }, spend: false })
    await store.allow('key:ok')
    const step = checkStep(s, { prompt: 'p', isKey: false })!
    for (let i = 0; i < 5; i++) {
      const o = await store.check('key:ok', step)
      expect(o.allowed).toBe(true)
      expect(o.raised).toEqual([])
    }
    await store.allow('key:ok', 0)
    expect((await store.check('key:ok', step)).allowed).toBe(false)
  })

  it('failed keys gateway-wide: one alert per window', async () => {
    const store = make()
    const outs = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        store.failure({ ...failed, address: `198.51.100.${i}`, alertAt: 1000, addressesAt: 25 }),
      ),
    )
    const raised = outs.flat()
    expect(raised).toHaveLength(1)
    expect(raised[0]).toMatchObject({ detector: 'stuffing', value: 25, threshold: 25 })
  })

  it('failed keys per key prefix: one alert per prefix per window, naming it; scattered prefixes none', async () => {
    const store = make()
    const outs = await Promise.all([
      // 30 failures sharing one prefix, from 30 addresses.
      ...Array.from({ length: 30 }, (_, i) =>
        store.failure({ ...failed, address: `198.51.100.${i}`, prefix: 'abcdefghij' }),
      ),
      // 30 failures from 30 addresses, each with its own prefix.
      ...Array.from({ length: 30 }, (_, i) =>
        store.failure({
          ...failed,
          address: `203.0.113.${i}`,
          prefix: `scattered${String(i).padStart(2, '0')}`,
        }),
      ),
    ])
    const raised = outs.flat()
    expect(raised).toHaveLength(1)
    expect(raised[0]).toMatchObject({
      detector: 'stuffing',
      level: 1,
      value: 10,
      threshold: 10,
      prefix: 'abcdefghij',
    })
    expect(raised[0]!.addresses).toHaveLength(10)
    expect(raised[0]!.addresses!.every((a) => a.startsWith('198.51.100.'))).toBe(true)
  })

  it('failed keys per key prefix: at most maxPrefixes prefixes are counted per window', async () => {
    const store = make()
    const raised = []
    for (const prefix of ['first00000', 'second0000', 'third00000']) {
      for (let i = 0; i < 3; i++) {
        raised.push(
          ...(await store.failure({
            ...failed,
            address: `192.0.2.${i}`,
            prefix,
            prefixAddressesAt: 3,
            maxPrefixes: 2,
          })),
        )
      }
    }
    expect(raised.map((r) => r.prefix)).toEqual(['first00000', 'second0000'])
  })

  it('keeps detections for operators, newest first, bounded', async () => {
    const store = make()
    for (let i = 0; i < 3; i++) await store.log({ subject: `key:${i}`, detector: 'loop', at: String(i) })
    expect((await store.recent(2)).map((r) => r.subject)).toEqual(['key:2', 'key:1'])
  })
})

describe('redis keys', () => {
  it('every key of a subject expires and shares one hash tag', async () => {
    const prefix = `ttl${process.pid}:`
    const store = new RedisDetectorStore({ client, prefix, ttlMs: 60_000 })
    const s = set({ sharedKey: { alertAt: 5 } })
    await store.check('key:t', checkStep(s, { prompt: 'hello', address: '192.0.2.1', isKey: true })!)
    await store.record('key:t', recordStep(s, { tokens: 10, usd: 0 }, 0.5)!)
    const keys = await client.keys(`${prefix}*`)
    expect(keys.sort()).toEqual([`${prefix}det:{key:t}`, `${prefix}det:{key:t}:a`, `${prefix}det:{key:t}:s`])
    for (const k of keys) {
      const ttl = await client.pttl(k)
      expect(ttl).toBeGreaterThan(0)
      // The longest: the addresses' window (10 minutes) and a 64th of it (lua/subject.lua renew).
      expect(ttl).toBeLessThanOrEqual(600_000 + 9_375)
    }
    // A bounded number of bytes for the subject.
    let bytes = 0
    for (const k of keys) bytes += Number(await client.call('MEMORY', 'USAGE', k))
    expect(bytes).toBeLessThan(4096)
  })

  it('expiries are pushed on now and then, not on every call; each key lives its time and a 64th more', async () => {
    const prefix = `renew${process.pid}:`
    const store = new RedisDetectorStore({ client, prefix, ttlMs: 60_000 })
    const s = set({ sharedKey: { alertAt: 50 } })
    const step = (i: number) =>
      Promise.all([
        store.check('key:r', checkStep(s, { prompt: `p${i}`, address: `192.0.2.${i}`, isKey: true })!),
        store.record('key:r', recordStep(s, { tokens: 10, usd: 0 }, 0.5)!),
      ])
    // The first call makes the subject's hash; the second keeps the fingerprints' time there too.
    await step(0)
    await step(1)
    const k = store.keys('key:r')
    const ttls = async () => Promise.all([k.state, k.loop, k.addrs].map((key) => client.pttl(key)))
    const first = await ttls()
    await client.config('RESETSTAT')
    for (let i = 2; i <= 6; i++) await step(i)
    const info = await client.info('commandstats')
    // Five script calls, each wrote the subject's hash, fingerprints and an address: no PEXPIRE.
    expect(/cmdstat_fcall:calls=(\d+)/.exec(info)?.[1]).toBe('5')
    expect(/cmdstat_pexpire:calls=/.test(info)).toBe(false)
    // Kept as long as the calls since asked (ttl 60 s; loop window 5 min; addresses' 10 min).
    const later = await ttls()
    for (const [i, ms] of [60_000, 300_000, 600_000].entries()) {
      expect(first[i]).toBeGreaterThan(ms)
      expect(first[i]).toBeLessThanOrEqual(ms + ms / 64)
      expect(later[i]).toBeGreaterThan(ms - 1_000)
    }
  })

  it('a key gone before its time is given its expiry again when it is made anew; seed() lets it be pushed on', async () => {
    const prefix = `gone${process.pid}:`
    const store = new RedisDetectorStore({ client, prefix, ttlMs: 60_000 })
    const s = set({ sharedKey: { alertAt: 50 } })
    const check = (i: number) =>
      store.check('key:g', checkStep(s, { prompt: `p${i}`, address: '192.0.2.1', isKey: true })!)
    await check(1)
    const k = store.keys('key:g')
    await client.del(k.loop, k.addrs)
    await check(2)
    // Both made again by this call (APPEND, HSET), with their expiry, not kept for good.
    expect(await client.pttl(k.loop)).toBeGreaterThan(300_000 - 1_000)
    expect(await client.pttl(k.addrs)).toBeGreaterThan(600_000 - 1_000)
    // seed() sets the hash's expiry to ttl: the next call pushes it on again (ttl and a 64th).
    await store.seed('key:g', 5)
    expect(await client.pttl(k.state)).toBeLessThanOrEqual(60_000)
    await check(3)
    expect(await client.pttl(k.state)).toBeGreaterThan(60_000)
  })

  it('a subject with full default state holds a bounded number of bytes', async () => {
    const prefix = `full${process.pid}:`
    const store = new RedisDetectorStore({ client, prefix })
    const s = resolveDetectors({ spend: { floorPerMinute: 1e12 } }).base
    for (let i = 0; i < 300; i++) {
      const prompt = `Question ${i}: what is ${i * 7} plus ${i}? explain it step by step`
      await store.check('key:full', checkStep(s, { prompt, address: `2001:db8:${i}::/64`, isKey: true })!)
      await store.record('key:full', recordStep(s, { tokens: 100, usd: 0.001 }, 0.5)!)
    }
    // 91 fingerprints of 27 bytes each (with their stamps), and at most a quarter more before the
    // string is trimmed.
    const fingerprints = (await client.strlen(`${prefix}det:{key:full}:s`)) / 27
    expect(fingerprints).toBeGreaterThanOrEqual(91)
    expect(fingerprints).toBeLessThanOrEqual(91 + 22)
    expect(await client.hlen(`${prefix}det:{key:full}:a`)).toBe(21)
    let bytes = 0
    for (const k of await client.keys(`${prefix}*`))
      bytes += Number(await client.call('MEMORY', 'USAGE', k, 'SAMPLES', '0'))
    expect(bytes).toBeLessThan(8192)
  })
})
