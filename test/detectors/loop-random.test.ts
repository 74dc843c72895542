/**
 * The loop count on Redis against the memory store over random sequences: turns of 1–30 checks
 * (one script call each) over three subjects interleaved at random, so that a subject's checks
 * go as runs of many under one head (lua/batch.lua), as runs of one, and as several runs of one
 * subject in one call (the call's own entries then searched across runs); prompts repeated,
 * changed by a word or two (near-identical: a few SimHash bits apart) and new; loop capacities
 * that a call's checks outgrow. The memory store, which runs each step alone, is the reference:
 * every check's detections and refusals must be the same, in order.
 */
import { describe, expect, it } from 'vitest'
import {
  type CheckOutcome,
  checkStep,
  fingerprint,
  resolveDetectors,
} from '../../src/core/detectors/index.js'
// The mock upstream's seeded generator (mulberry32): a failing sequence can be run again.
import { prng as random } from '../../src/gateway/mock/generate.js'
import { MemoryDetectorStore } from '../../src/store/detectors/memory.js'
import { RedisDetectorStore } from '../../src/store/detectors/redis.js'
import type { DetectorStore } from '../../src/store/detectors/types.js'
import { redisForFile } from '../helpers/redis-clients.js'

const { counted } = redisForFile()
let n = 0

const seen = (o: CheckOutcome) => ({
  raised: o.raised,
  refused: o.refused?.detector,
  level: o.refused?.level,
})

/** Turns of [subject, prompt] checks. */
function sequence(seed: number, turns: number): [string, string][][] {
  const r = random(seed)
  // Three long texts; a prompt is one of them with up to two words changed (near-identical),
  // one as it is (identical), or a new one.
  const texts = Array.from({ length: 3 }, (_, t) =>
    Array.from({ length: 120 }, (_, i) => `w${(i * (7 + t)) % 13}x${i % (5 + t)}`),
  )
  const prompt = () => {
    const x = r()
    if (x < 0.15) return `new question ${Math.floor(r() * 1e9)}`
    const words = [...texts[Math.floor(r() * texts.length)]!]
    const changed = x < 0.4 ? 0 : x < 0.8 ? 1 : 2
    for (let c = 0; c < changed; c++) words[Math.floor(r() * words.length)] = `c${Math.floor(r() * 4)}`
    return words.join(' ')
  }
  return Array.from({ length: turns }, (_, t) => {
    const size = 1 + Math.floor(r() * 30)
    // Mostly one subject a turn (long runs), sometimes two or three interleaved; the subjects
    // move on every 8 turns, so that a block does not refuse the rest of the sequence.
    const mixed = r() < 0.4
    const base = Math.floor(t / 8) * 3
    return Array.from({ length: size }, () => {
      const s = mixed ? base + Math.floor(r() * 3) : base + (t % 3)
      return [`key:${s}`, prompt()] as [string, string]
    })
  })
}

async function run(store: DetectorStore, turns: [string, string][][], set: ReturnType<typeof setOf>) {
  const out = []
  for (const turn of turns) {
    const answers = await Promise.all(
      turn.map(([subject, prompt]) => store.check(subject, checkStep(set, { prompt, isKey: false })!)),
    )
    out.push(...answers.map(seen))
  }
  return out
}

const bits = (x: number) => {
  let c = 0
  for (let y = x >>> 0; y !== 0; y &= y - 1) c++
  return c
}
/**
 * A text and, for each distance 0 to 9, a text one or two words apart whose SimHash lies that many
 * bits from its own (found, not assumed: the pairs among them then lie 0 to ~12 bits apart).
 */
const BASE = Array.from({ length: 120 }, (_, i) => `v${(i * 11) % 17}y${i % 7}`).join(' ')
const VARIANTS = (() => {
  const words = BASE.split(' ')
  const f = fingerprint(BASE)
  const found = new Map<number, string>()
  for (let j = 0; j < words.length; j++)
    for (const k of [-1, (j + 60) % words.length]) {
      const w = [...words]
      w[j] = `k${j}`
      if (k >= 0) w[k] = `m${k}`
      const g = fingerprint(w.join(' '))
      const d = bits(f.hi ^ g.hi) + bits(f.lo ^ g.lo)
      if (d <= 9 && !found.has(d)) found.set(d, w.join(' '))
    }
  return [...found.entries()].sort((a, b) => a[0] - b[0]).map(([, t]) => t)
})()

/**
 * Turns of [subject, prompt] checks drawn from few prompts (each repeated, or one word changed)
 * over three subjects always interleaved, up to 60 a turn: most checks match several of the
 * call's earlier checks of their subject, more than a small capacity counts. `broken`: the
 * checks (by their place in the whole sequence) whose fingerprint reaches Redis cut short.
 */
function crowded(seed: number, turns: number): { turns: [string, string][][]; broken: Set<number> } {
  const r = random(seed)
  const broken = new Set<number>()
  let k = 0
  const out = Array.from({ length: turns }, (_, t) =>
    Array.from({ length: 1 + Math.floor(r() * 60) }, () => {
      if (r() < 0.06) broken.add(k)
      k++
      const x = r()
      const prompt =
        x < 0.1
          ? `fresh ${Math.floor(r() * 1e9)}`
          : x < 0.4
            ? BASE
            : VARIANTS[Math.floor(r() * VARIANTS.length)]!
      return [`key:${Math.floor(t / 6) * 3 + Math.floor(r() * 3)}`, prompt] as [string, string]
    }),
  )
  return { turns: out, broken }
}

const setOf = (nearDistance: number, blockAt: number) =>
  resolveDetectors({
    loop: { alertAt: 3, throttleAt: 6, blockAt, nearDistance, nearFactor: 1.5, throttlePerMinute: 1000 },
    spend: false,
    sharedKey: false,
    scraping: false,
  }).base

describe('the loop count on Redis equals the memory store over random prompt sequences', () => {
  it.each([
    [0, 0, 1],
    [2, 10, 2],
    [3, 0, 3],
    [3, 10, 4],
    [5, 12, 5],
    [7, 0, 6],
    [9, 10, 7],
  ])(
    'nearDistance %i, blockAt %i (seed %i): every check the same, long runs among them',
    async (distance, blockAt, seed) => {
      const set = setOf(distance, blockAt)
      const turns = sequence(seed, 40)
      const { client, sent, scriptCalls } = counted()
      const store = new RedisDetectorStore({ client, prefix: `lr${++n}:` })
      const before = scriptCalls()
      const redis = await run(store, turns, set)
      expect(scriptCalls() - before).toBe(turns.length)
      const memory = await run(new MemoryDetectorStore(), turns, set)
      expect(redis).toEqual(memory)
      // Detections were raised (the sequence reaches the thresholds), and checks went as runs of many.
      expect(memory.filter((o) => o.raised.length > 0).length).toBeGreaterThan(3)
      const heads = sent.flat().filter((a) => typeof a === 'string' && /^c\d+\.\d+.*\*([5-9]|\d\d)$/.test(a))
      expect(heads.length).toBeGreaterThan(10)
    },
  )
})

describe('the loop count on Redis when the checks of a call match many of its earlier ones', () => {
  it('has near-identical prompts at every distance from 0 to 9 bits', () => {
    expect(VARIANTS.length).toBe(10)
  })

  it.each([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])(
    'nearDistance %i: the same as the memory store, checks that fail before they observe keeping their places',
    async (distance) => {
      const set = setOf(distance, distance % 2 === 0 ? 0 : 12)
      const { turns, broken } = crowded(100 + distance, 30)
      const { client, scriptCalls } = counted()
      // The broken checks' fingerprints cut to 15 bytes on their way (the step fails in Redis
      // before it observes); the bytes that follow the others' counted: the call's own matches.
      let k = -1
      let matched = 0
      const send = client.sendCommand.bind(client) as (c: { name: string; args: unknown[] }) => unknown
      ;(client as unknown as { sendCommand: typeof send }).sendCommand = (command) => {
        if (command.name.toUpperCase() === 'FCALL')
          command.args = command.args.map((a) => {
            if (!Buffer.isBuffer(a)) return a
            if (k < 0) return a
            matched += a.length - 16
            return broken.has(k++) ? a.subarray(0, 15) : a
          })
        return send(command)
      }
      const store = new RedisDetectorStore({ client, prefix: `lm${++n}:` })
      await store.check('key:warm', checkStep(set, { prompt: 'warm', isKey: false })!) // the library loaded
      k = 0
      matched = 0
      const before = scriptCalls()
      const redis = []
      for (const turn of turns) {
        const answers = await Promise.allSettled(
          turn.map(([subject, prompt]) => store.check(subject, checkStep(set, { prompt, isKey: false })!)),
        )
        redis.push(...answers)
      }
      expect(scriptCalls() - before).toBe(turns.length)
      // The memory store runs the same checks but the broken ones.
      const kept = turns.map((turn, t) =>
        turn.filter((_, i) => !broken.has(turns.slice(0, t).reduce((a, b) => a + b.length, 0) + i)),
      )
      const memory = await run(new MemoryDetectorStore(), kept, set)
      const failed = redis.filter((a) => a.status === 'rejected')
      expect(failed.length).toBe(broken.size)
      expect(redis.flatMap((a) => (a.status === 'fulfilled' ? [seen(a.value)] : []))).toEqual(memory)
      expect(broken.size).toBeGreaterThan(20)
      expect(matched).toBeGreaterThan(500)
      expect(memory.filter((o) => o.raised.length > 0).length).toBeGreaterThan(3)
    },
  )
})
