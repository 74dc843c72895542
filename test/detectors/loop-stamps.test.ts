/**
 * The loop count on Redis reads a repeated fingerprint's count from the stamps of the entries that
 * hold it (lua/loop.lua): C and N, counted on from the newest such entry, and a chain begun anew
 * where the near distance changes. Against the memory store: one subject's checks under detector
 * sets of different near distances (the same capacity), taking turns at random, so that the
 * entries of one fingerprint lie in chains of different distances; prompts from a loop of a few,
 * near variants of them and new ones, with a small capacity, so that the newest entry of a
 * fingerprint is often out of the window (a prompt back after a while).
 */
import { describe, expect, it } from 'vitest'
import {
  type CheckOutcome,
  checkStep,
  fingerprint,
  resolveDetectors,
} from '../../src/core/detectors/index.js'
import { prng as random } from '../../src/gateway/mock/generate.js'
import { MemoryDetectorStore } from '../../src/store/detectors/memory.js'
import { RedisDetectorStore } from '../../src/store/detectors/redis.js'
import { redisForFile } from '../helpers/redis-clients.js'

const { client } = redisForFile()
let n = 0

const seen = (o: CheckOutcome) => ({
  raised: o.raised,
  refused: o.refused?.detector,
  level: o.refused?.level,
})

/** A set of the loop detector alone: alerts only (each subject's capacity is its alert's). */
const setOf = (nearDistance: number, alertAt: number) =>
  resolveDetectors({
    loop: { alertAt, throttleAt: 0, blockAt: 0, nearDistance, nearFactor: 1.5, throttlePerMinute: 1000 },
    spend: false,
    sharedKey: false,
    scraping: false,
  }).base

const bits = (x: number) => {
  let c = 0
  for (let y = x >>> 0; y !== 0; y &= y - 1) c++
  return c
}

/** Three texts and, for each, variants one or two words apart whose SimHash lies 1 to 6 bits away. */
const TEXTS = Array.from({ length: 3 }, (_, t) =>
  Array.from({ length: 90 }, (_, i) => `t${t}w${(i * (5 + t)) % 11}z${i % (4 + t)}`).join(' '),
)
const VARIANTS = TEXTS.map((text) => {
  const f = fingerprint(text)
  const words = text.split(' ')
  const found: string[] = []
  for (let j = 0; j < words.length && found.length < 4; j++) {
    const w = [...words]
    w[j] = `q${j}`
    const g = fingerprint(w.join(' '))
    const d = bits(f.hi ^ g.hi) + bits(f.lo ^ g.lo)
    if (d >= 1 && d <= 6) found.push(w.join(' '))
  }
  return found
})

describe('the loop count from stamps equals the memory store', () => {
  it('has near variants for every text', () => {
    for (const v of VARIANTS) expect(v.length).toBe(4)
  })

  it.each([1, 2, 3, 4])(
    'seed %i: near distances 0, 2, 3 and 6 taking turns on each subject, turns of 1-20 checks',
    async (seed) => {
      const r = random(seed)
      // One subject per alert threshold (2 to 12: each count from 2 on shows where it is first
      // reached), each under four near distances in turn.
      const thresholds = Array.from({ length: 11 }, (_, j) => j + 2)
      const sets = thresholds.map((a) => [0, 2, 3, 6].map((d) => setOf(d, a)))
      const store = new RedisDetectorStore({ client: client(), prefix: `st${++n}:` })
      const memory = new MemoryDetectorStore()
      const redis: ReturnType<typeof seen>[] = []
      const mem: ReturnType<typeof seen>[] = []
      for (let t = 0; t < 40; t++) {
        // Mostly one distance a while (chains grow), now and then another.
        const d = r() < 0.6 ? Math.floor(t / 6) % 4 : Math.floor(r() * 4)
        const prompts = Array.from({ length: 1 + Math.floor(r() * 20) }, () => {
          const x = r()
          const k = Math.floor(r() * 3)
          return x < 0.1
            ? `new ${Math.floor(r() * 1e9)}`
            : x < 0.3
              ? VARIANTS[k]![Math.floor(r() * 4)]!
              : TEXTS[k]!
        })
        const steps = thresholds.map((_, j) =>
          prompts.map((prompt) => checkStep(sets[j]![d]!, { prompt, isKey: false })!),
        )
        const answers = await Promise.all(steps.flatMap((ss, j) => ss.map((s) => store.check(`key:${j}`, s))))
        redis.push(...answers.map(seen))
        for (const [j, ss] of steps.entries())
          for (const s of ss) mem.push(seen(memory.check(`key:${j}`, s) as CheckOutcome))
      }
      expect(redis).toEqual(mem)
      expect(mem.filter((o) => o.raised.length > 0).length).toBeGreaterThan(4)
    },
  )
})

describe('the loop count from stamps where the fingerprint is not alone', () => {
  const H = '0123456789abcdef'
  const loopOnly = (alertAt: number, windowMs = 300_000) =>
    resolveDetectors({
      loop: {
        alertAt,
        throttleAt: 0,
        blockAt: 0,
        nearDistance: 3,
        nearFactor: 10,
        windowMs,
        throttlePerMinute: 1000,
      },
      spend: false,
      sharedKey: false,
      scraping: false,
    }).base
  const as = (set: ReturnType<typeof loopOnly>, hash: string, hi: number, lo: number) => {
    const step = checkStep(set, { prompt: 'any', isKey: false })!
    return { ...step, loop: { ...step.loop!, hash, hi, lo } }
  }

  it('counts a hash collision kept before the oldest entry of the fingerprint (one check a call)', async () => {
    const set = loopOnly(4)
    const store = new RedisDetectorStore({ client: client(), prefix: `sc${++n}:` })
    const memory = new MemoryDetectorStore()
    // The same hash with a SimHash far away, then the fingerprint three times: the fourth has 4.
    const steps = [as(set, H, 0xffff0000, 0), ...Array.from({ length: 3 }, () => as(set, H, 0x0000ffff, 0))]
    const redis = []
    const mem = []
    for (const s of steps) {
      redis.push(seen(await store.check('key:c', s)))
      mem.push(seen(memory.check('key:c', s) as CheckOutcome))
    }
    expect(redis).toEqual(mem)
    expect(mem.map((o) => o.raised.map((r) => r.value))).toEqual([[], [], [], [4]])
  })

  it('takes a stamp from an entry out of a shorter window (the fingerprint kept, not counted)', async () => {
    // The memory store forgets what a count's window leaves out (LoopEntries.count); the Redis
    // string keeps it until it is cut, and a longer window counts it again, as before the stamps.
    // So this one holds Redis to its own count: a chain begun while the fingerprint was kept
    // (out of the window) would count 2 here.
    const long = loopOnly(3)
    const short = loopOnly(3, 100)
    const store = new RedisDetectorStore({ client: client(), prefix: `sw${++n}:` })
    const fp = [H, 0x0000ffff, 0] as const
    const values: number[][] = []
    const step = async (set: ReturnType<typeof loopOnly>) => {
      values.push((await store.check('key:w', as(set, ...fp))).raised.map((r) => r.value))
    }
    await step(long)
    await new Promise((resolve) => setTimeout(resolve, 150))
    // Under the short window the first is out of it: counted 1, but it is still kept.
    await step(short)
    // Under the long window both are in it again: the third counts 3.
    await step(long)
    expect(values).toEqual([[], [], [3]])
  })
})
