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
import { type CheckOutcome, checkStep, resolveDetectors } from '../../src/core/detectors/index.js'
import { MemoryDetectorStore } from '../../src/store/detectors/memory.js'
import { RedisDetectorStore } from '../../src/store/detectors/redis.js'
import type { DetectorStore } from '../../src/store/detectors/types.js'
import { redisForFile } from '../helpers/redis-clients.js'

const { counted } = redisForFile()
let n = 0

/** A seeded generator (mulberry32): the same sequence on every run. */
function random(seed: number): () => number {
  let a = seed
  return () => {
    a = (a + 0x6d2b79f5) | 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

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
