/**
 * Record steps of one subject and detector set that go to Redis in the same script call fold into
 * one step (src/store/detectors/batch.ts): the amounts summed, the largest share used kept. The
 * subject ends as the steps one by one would leave it, a detection is raised once, and a folded
 * step that fails rejects every caller folded into it.
 */
import type { Redis } from 'ioredis'
import { describe, expect, it } from 'vitest'
import { recordStep, resolveDetectors, THROTTLE } from '../../src/core/detectors/index.js'
import { RedisDetectorStore } from '../../src/store/detectors/redis.js'
import { redisForFile } from '../helpers/redis-clients.js'

const { counted } = redisForFile()

const HOUR = 3_600_000
// Spend in hour-long buckets, held at 10× a seeded baseline of 100 tokens; scraping at 90 %.
const spendAndScraping = resolveDetectors({
  loop: false,
  sharedKey: false,
  spend: { bucketMs: HOUR, sustainMs: HOUR, floorPerMinute: 1, factor: 10 },
  scraping: { bucketMs: HOUR, forMs: 2 * HOUR, share: 0.9 },
}).base

/**
 * Each step's head in a script call's arguments ('r0.2': a record of the first subject, set 2; no
 * run of more than one step: lua/batch.lua).
 */
const heads = (sent: unknown[]) =>
  sent.filter((a) => typeof a === 'string' && /^[crf]\d+\.\d+(\.\d+)*$/.test(a))

describe('Redis detector store: records of one subject in one call fold into one step', () => {
  it('20 records: one step, the sum spent, the largest share kept, the hold raised once', async () => {
    const { client, sent, scriptCalls } = counted()
    const store = new RedisDetectorStore({ client, prefix: 'fold1:' })
    await store.seed('key:a', 100)
    const before = scriptCalls()
    const used = (i: number) => (i === 7 ? 0.95 : 0.5)
    const results = await Promise.all([
      ...Array.from({ length: 20 }, (_, i) =>
        store.record('key:a', recordStep(spendAndScraping, { tokens: 100, usd: 0 }, used(i))!),
      ),
      // Not folded with those: another subject, and the same subject with another set (no share).
      store.record('key:b', recordStep(spendAndScraping, { tokens: 100, usd: 0 }, 0.5)!),
      store.record('key:a', recordStep(spendAndScraping, { tokens: 1, usd: 0 }, undefined)!),
    ])
    expect(scriptCalls() - before).toBe(1)
    expect(heads(sent.at(-1)!)).toHaveLength(3)
    // 20 × 100 tokens in the bucket (+1 from the unfolded record), 20× the baseline: held once.
    const state = store.keys('key:a').state
    expect(Number(await client.hget(state, 'ss'))).toBe(2001)
    expect(results.flat()).toEqual([expect.objectContaining({ detector: 'spend', level: THROTTLE })])
    expect(results[0]).toHaveLength(1)
    // One share of 0.95 among them: the bucket found the subject at its limit.
    expect(await client.hget(state, 'chi')).toBe('1')
    expect(Number(await client.hget(store.keys('key:b').state, 'ss'))).toBe(100)
  })

  it('as one at a time would leave it: the same fields as 20 records sent one by one', async () => {
    const one = counted()
    const folded = counted()
    const apart = new RedisDetectorStore({ client: one.client, prefix: 'fold2:' })
    const together = new RedisDetectorStore({ client: folded.client, prefix: 'fold3:' })
    const step = (i: number) => recordStep(spendAndScraping, { tokens: 10 + i, usd: 0 }, i / 20)!
    for (let i = 0; i < 20; i++) await apart.record('key:a', step(i))
    await Promise.all(Array.from({ length: 20 }, (_, i) => together.record('key:a', step(i))))
    expect(one.scriptCalls()).toBe(20)
    expect(folded.scriptCalls()).toBe(1)
    const fields = async (client: Redis, store: RedisDetectorStore) => {
      const all = await client.hgetall(store.keys('key:a').state)
      for (const expiry of ['xs', 'xl', 'xa', 'xc']) delete all[expiry]
      return all
    }
    expect(await fields(folded.client, together)).toEqual(await fields(one.client, apart))
  })

  it('a folded step that fails rejects each of its callers', async () => {
    const { client, sent } = counted()
    const store = new RedisDetectorStore({ client, prefix: 'fold4:' })
    await client.set(store.keys('key:broken').state, 'not a hash')
    const results = await Promise.allSettled(
      Array.from({ length: 3 }, () =>
        store.record('key:broken', recordStep(spendAndScraping, { tokens: 1, usd: 0 }, 0.5)!),
      ),
    )
    expect(heads(sent.at(-1)!)).toHaveLength(1)
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected'])
    for (const r of results) expect(String((r as PromiseRejectedResult).reason)).toMatch(/WRONGTYPE/)
  })
})
