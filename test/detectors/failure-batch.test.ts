/**
 * Failed keys (the stuffing detector) on Redis: the failures of one event-loop turn go as one
 * script call (all on the `{stuffing}` slot), not one each — a credential-stuffing attack is not
 * amplified into a script call per hostile request — each still decided in order as the engine
 * decides them one at a time (the memory store), a failing step rejecting only its own caller.
 */
import type { Redis } from 'ioredis'
import { beforeAll, describe, expect, it } from 'vitest'
import {
  checkStep,
  type Raised,
  resolveDetectors,
  type StuffingStep,
} from '../../src/core/detectors/index.js'
import { MAX_BATCH } from '../../src/store/detectors/batch.js'
import { MemoryDetectorStore } from '../../src/store/detectors/memory.js'
import { RedisDetectorStore } from '../../src/store/detectors/redis.js'
import { commandsOf } from '../helpers/command-stats.js'
import { redisForFile } from '../helpers/redis-clients.js'

const redis = redisForFile()
let admin: Redis
let n = 0
beforeAll(() => {
  admin = redis.client()
})

function store(prefix: string): RedisDetectorStore {
  return new RedisDetectorStore({ client: redis.client(), prefix })
}

const base = { windowMs: 3_600_000, alertAt: 150, addressesAt: 60, prefixAddressesAt: 10, maxPrefixes: 4 }

/**
 * 200 failures from 50 addresses: five prefixes of 30 failures each (the fifth beyond
 * maxPrefixes), and 50 without a prefix.
 */
const attack: StuffingStep[] = Array.from({ length: 200 }, (_, i) => ({
  ...base,
  address: `198.51.100.${i % 50}`,
  prefix: i % 4 === 3 ? undefined : `prefix000${(i * 7) % 5}`,
}))

/** A detection with its addresses sorted (Redis gives a set's members in no set order). */
const sorted = (raised: Raised[]) =>
  raised.map((r) => ({ ...r, addresses: r.addresses === undefined ? undefined : [...r.addresses].sort() }))

describe('Redis detector store: failed keys of one turn in one script call', () => {
  it('200 failures from 50 addresses: at most ceil(200 / MAX_BATCH) script calls, the detections of one at a time', async () => {
    // The library loaded first (by a store of another prefix), so that only the steps are counted.
    await store('warm:').failure({ ...base, address: '192.0.2.1' })
    const s = store(`f${++n}:`)
    const memory = new MemoryDetectorStore()
    const expected: Raised[][] = []
    for (const step of attack) expected.push(await memory.failure(step))
    let outs: Raised[][] = []
    const commands = await commandsOf(admin, async () => {
      outs = await Promise.all(attack.map((step) => s.failure(step)))
    })
    expect(commands.fcall).toBeLessThanOrEqual(Math.ceil(200 / MAX_BATCH))
    // Per caller, in order: the gateway-wide alert on the 150th failure, each of the first four
    // prefixes on its tenth address, the fifth to come (prefix0001) not counted.
    expect(outs.map(sorted)).toEqual(expected.map(sorted))
    const raised = outs.flat()
    expect(raised.map((r) => r.prefix ?? 'gateway').sort()).toEqual([
      'gateway',
      'prefix0000',
      'prefix0002',
      'prefix0003',
      'prefix0004',
    ])
    // The hash is written once a call, not once a failure.
    expect(commands.hset ?? 0).toBeLessThanOrEqual(Math.ceil(200 / MAX_BATCH))
    expect(commands.hincrby ?? 0).toBe(0)
  })

  it('a failure with a bad argument, or whose prefix set holds the wrong type, fails alone', async () => {
    const prefix = `f${++n}:`
    const s = store(prefix)
    const step = { ...base, alertAt: 4, addressesAt: 0, prefixAddressesAt: 2 }
    // prefixBroken is counted this window; then its set is overwritten by a string.
    await s.failure({ ...step, address: '192.0.2.1', prefix: 'prefixBrkn' })
    await admin.set(`${prefix}det:{stuffing}:p:prefixBrkn`, 'not a set')
    let results: PromiseSettledResult<Raised[]>[] = []
    const commands = await commandsOf(admin, async () => {
      results = await Promise.allSettled([
        s.failure({ ...step, address: '192.0.2.2', prefix: 'prefixGood' }),
        // Not a number (options are checked before they reach a store; here one is not).
        s.failure({ ...step, address: '192.0.2.3', alertAt: 'soon' as unknown as number }),
        s.failure({ ...step, address: '192.0.2.4', prefix: 'prefixBrkn' }),
        s.failure({ ...step, address: '192.0.2.5', prefix: 'prefixGood' }),
        s.failure({ ...step, address: '192.0.2.6' }),
      ])
    })
    expect(commands.fcall).toBe(1)
    expect(results.map((r) => r.status)).toEqual([
      'fulfilled',
      'rejected',
      'rejected',
      'fulfilled',
      'fulfilled',
    ])
    expect(String((results[2] as PromiseRejectedResult).reason)).toMatch(/WRONGTYPE/)
    // prefixGood's second address alerts; the gateway-wide count reaches 4 with the last one
    // (the two that failed not counted), naming the one address kept (addressesAt 0: a cap of 1).
    const raised = results.flatMap((r) => (r.status === 'fulfilled' ? sorted(r.value) : []))
    expect(raised).toEqual([
      {
        detector: 'stuffing',
        level: 1,
        value: 2,
        threshold: 2,
        addresses: ['192.0.2.2', '192.0.2.5'],
        prefix: 'prefixGood',
      },
      { detector: 'stuffing', level: 1, value: 4, threshold: 4, addresses: ['192.0.2.1'] },
    ])
  })

  it('two gateways on one Redis, failures interleaved in the same turns: one alert per window, one per prefix', async () => {
    const prefix = `f${++n}:`
    const a = store(prefix)
    const b = store(prefix)
    const raised: Raised[] = []
    for (let turn = 0; turn < 4; turn++) {
      const outs = await Promise.all(
        Array.from({ length: 100 }, (_, i) =>
          (i % 2 === 0 ? a : b).failure({
            ...base,
            alertAt: 120,
            address: `203.0.113.${(turn * 100 + i) % 70}`,
            prefix: `prefix000${i % 3}`,
          }),
        ),
      )
      raised.push(...outs.flat())
    }
    expect(raised.map((r) => r.prefix ?? 'gateway').sort()).toEqual([
      'gateway',
      'prefix0000',
      'prefix0001',
      'prefix0002',
    ])
    expect(raised.find((r) => r.prefix === undefined)).toMatchObject({ value: 60, threshold: 60 })
  })

  it('failures and checks in one turn share one script call, each decided', async () => {
    const s = store(`f${++n}:`)
    const loops = resolveDetectors({ loop: { alertAt: 3, throttleAt: 0, blockAt: 0 }, spend: false }).base
    await s.check('key:warm', checkStep(loops, { prompt: 'warm up', isKey: false })!)
    let outs: Raised[][] = []
    const commands = await commandsOf(admin, async () => {
      outs = await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          i % 2 === 0
            ? s
                .check(`key:k${i % 4}`, checkStep(loops, { prompt: 'again', isKey: false })!)
                .then((o) => o.raised)
            : s.failure({ ...base, alertAt: 6, address: `192.0.2.${i}`, prefix: 'prefixMixd' }),
        ),
      )
    })
    expect(commands.fcall).toBe(1)
    // key:k0 and key:k2 each see 'again' three times; the sixth failure alerts.
    expect(outs.flat().map((r) => `${r.detector}:${r.value}`)).toEqual(['loop:3', 'loop:3', 'stuffing:6'])
  })
})
