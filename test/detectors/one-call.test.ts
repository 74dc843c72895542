/**
 * Many checks of one subject in one Redis script call: each still counts what the checks before it
 * in the same call observed — the loop's identical and near-identical prompts (kept apart from
 * the string read, lua/loop.lua), the addresses and countries of a shared key (a step with the
 * same address, country and set as the step before it on the key skips the count, lua/check.lua),
 * and the flags raised by an earlier step refuse the later ones. The memory store, which runs
 * each step alone, is the reference.
 */
import { describe, expect, it } from 'vitest'
import { type CheckOutcome, checkStep, resolveDetectors } from '../../src/core/detectors/index.js'
import { MemoryDetectorStore } from '../../src/store/detectors/memory.js'
import { RedisDetectorStore } from '../../src/store/detectors/redis.js'
import type { DetectorStore } from '../../src/store/detectors/types.js'
import { redisForFile } from '../helpers/redis-clients.js'

let n = 0
const { counted: countedClient } = redisForFile()
const set = (input = {}) => resolveDetectors(input).base

/** What a check answered, as the caller reads it. */
const seen = (o: CheckOutcome) => ({
  raised: o.raised,
  refused: o.refused?.detector,
  level: o.refused?.level,
})

/**
 * Each round's checks in one turn (one script call on Redis), the rounds one after another; rounds
 * 2k and 2k + 1 on the k-th subject (the first finds no fingerprints, the second the first's).
 */
async function rounds(
  store: DetectorStore,
  subject: string,
  steps: Parameters<DetectorStore['check']>[1][][],
) {
  const out = []
  for (const [r, round] of steps.entries()) {
    const answers = await Promise.all(round.map((s) => store.check(`${subject}${Math.floor(r / 2)}`, s)))
    out.push(...answers.map(seen))
  }
  return out
}

function redisStore(): { store: RedisDetectorStore; scriptCalls: () => number } {
  const { client, scriptCalls } = countedClient()
  return { store: new RedisDetectorStore({ client, prefix: `oc${++n}:` }), scriptCalls }
}

describe('memory and Redis stores count the loop alike when a call carries many checks', () => {
  // Long enough that one changed word moves the SimHash by 0 to 6 bits.
  const words = Array.from({ length: 120 }, (_, i) => `w${(i * 7) % 12}x${i % 5}`)
  const prompt = (i: number) => {
    if (i % 7 === 6) return `unrelated question ${i}`
    const w = [...words]
    w[(i % 6) * 17] = `changed${i % 3}`
    return w.join(' ')
  }

  it.each([
    [0, 3, 5],
    [3, 3, 5],
    [6, 3, 5],
    [12, 3, 5],
    // max 4: a call of 12 checks counts only the newest 3 before each
    [3, 3, 0],
    [6, 3, 0],
  ])(
    'nearDistance %i, throttleAt %i, blockAt %i: the same detections and refusals, in order',
    async (nearDistance, throttleAt, blockAt) => {
      const s = set({
        loop: { alertAt: 2, throttleAt, blockAt, nearDistance, nearFactor: 1, throttlePerMinute: 1000 },
        spend: false,
      })
      const steps = Array.from({ length: 6 }, (_, r) =>
        Array.from({ length: 12 }, (_, i) => checkStep(s, { prompt: prompt(r * 5 + i), isKey: false })!),
      )
      const { store, scriptCalls } = redisStore()
      const before = scriptCalls()
      const redisSeen = await rounds(store, 'key:l', steps)
      expect(scriptCalls() - before).toBe(steps.length)
      const memory = await rounds(new MemoryDetectorStore(), 'key:l', steps)
      expect(redisSeen).toEqual(memory)
    },
  )
})

describe('memory and Redis stores count a shared key alike when a call carries many checks', () => {
  it('the same address again, another, and back: each new address counted once, the alert on the third', async () => {
    const s = set({ sharedKey: { alertAt: 3, blockAt: 4, factor: 0 }, loop: false, spend: false })
    const use = (address: string) => checkStep(s, { address, isKey: true })!
    const steps = [
      ['192.0.2.1', '192.0.2.1', '192.0.2.2', '192.0.2.2', '192.0.2.1', '192.0.2.3', '192.0.2.3'].map(use),
      ['192.0.2.3', '192.0.2.4', '192.0.2.4'].map(use),
    ]
    const redisSeen = await rounds(redisStore().store, 'key:a', steps)
    expect(redisSeen).toEqual(await rounds(new MemoryDetectorStore(), 'key:a', steps))
    expect(redisSeen.flatMap((o) => o.raised)).toMatchObject([
      { detector: 'sharedKey', level: 1, value: 3 },
      { detector: 'sharedKey', level: 3, value: 4 },
    ])
    expect(redisSeen.map((o) => o.refused ?? '')).toEqual([
      '',
      '',
      '',
      '',
      '',
      '',
      '',
      '',
      'sharedKey',
      'sharedKey',
    ])
  })

  it('one address from a second country: counted, though the address is the same', async () => {
    const s = set({
      sharedKey: { alertAt: 10, countriesAt: 2, blockCountriesAt: 3 },
      loop: false,
      spend: false,
    })
    const use = (country: string) => checkStep(s, { address: '192.0.2.9', country, isKey: true })!
    const steps = [['US', 'US', 'DE', 'DE', 'US', 'FR', 'FR'].map(use)]
    const redisSeen = await rounds(redisStore().store, 'key:c', steps)
    expect(redisSeen).toEqual(await rounds(new MemoryDetectorStore(), 'key:c', steps))
    expect(redisSeen.flatMap((o) => o.raised)).toMatchObject([
      { detector: 'sharedKey', level: 1, value: 2, by: 'countries' },
      { detector: 'sharedKey', level: 3, value: 3, by: 'countries' },
    ])
  })
})

describe('Redis detector store: a step that fails first on a subject whose hash exists', () => {
  it('rejects only its caller (nothing of the subject written yet: no ttl to keep it for)', async () => {
    const { store, scriptCalls } = redisStore()
    const s = set({ spend: false })
    const check = (subject: string) =>
      store.check(subject, checkStep(s, { prompt: `hi ${subject}`, isKey: false })!)
    // key:bad has a hash (a spend baseline), and its fingerprints key is a list.
    await store.seed('key:bad', 5)
    const client = (store as unknown as { client: import('ioredis').Redis }).client
    await client.lpush(store.keys('key:bad').loop, 'not a string')
    expect(await client.exists(store.keys('key:bad').state)).toBe(1)
    const before = scriptCalls()
    // key:bad first in the call: no step before it set a ttl.
    const results = await Promise.allSettled([check('key:bad'), check('key:good'), check('key:good')])
    expect(scriptCalls() - before).toBe(1)
    expect(results.map((r) => r.status)).toEqual(['rejected', 'fulfilled', 'fulfilled'])
    expect(String((results[0] as PromiseRejectedResult).reason)).toMatch(/WRONGTYPE/)
  })
})
