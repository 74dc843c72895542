import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { tokenBucket } from '../src/core/limits.js'
import { type Decision, Limiter } from '../src/limiter.js'
import { MemoryStore } from '../src/store/memory.js'
import { RedisStore } from '../src/store/redis/store.js'
import type { Store } from '../src/store/types.js'
import { type RedisServer, startRedis } from './helpers/redis-server.js'
import { sleep } from './helpers/sleep.js'

/**
 * What a textbook bucket (tokens + last refill) admits for the same arrival times: where the
 * offered load had gaps (a busy machine stalls the event loop), the refill of a full bucket is
 * lost for everyone, so this — not burst + rate x T — is what "nearly all of it" means.
 */
function idealAdmitted(times: number[], burst: number, rate: number): number {
  let tokens = burst
  let last = times[0]!
  let admitted = 0
  for (const t of times) {
    tokens = Math.min(burst, tokens + ((t - last) * rate) / 1000)
    last = t
    if (tokens >= 1 - 1e-9) {
      tokens -= 1
      admitted++
    }
  }
  return admitted
}

/**
 * Over a run of T ms (store clock, first to last decision) a bucket of burst B refilled at R/s may
 * admit at most B + R*T (+1 for the unit in flight at the end), and it must admit at least 99 % of
 * what an ideal bucket admits for the same arrivals.
 */
function checkAdmitted(decisions: Decision[], burst: number, rate: number) {
  const admitted = decisions.filter((d) => d.allowed).length
  const times = decisions.map((d) => d.now).sort((a, b) => a - b)
  const span = times[times.length - 1]! - times[0]!
  const allowance = burst + (rate * span) / 1000
  expect(admitted).toBeLessThanOrEqual(allowance + 1)
  const ideal = idealAdmitted(times, burst, rate)
  expect(admitted).toBeGreaterThanOrEqual(Math.floor(0.99 * ideal))
  return { admitted, allowance, ideal }
}

/** Offers `perTick` calls every millisecond-ish for `durationMs` of wall time. */
async function offer(limiter: Limiter, subject: string, durationMs: number, perTick: number) {
  const decisions: Decision[] = []
  const end = Date.now() + durationMs
  while (Date.now() < end) {
    const batch = await Promise.all(Array.from({ length: perTick }, () => limiter.consume(subject)))
    decisions.push(...batch)
    await sleep(1)
  }
  return decisions
}

describe('long run at 10x the allowed rate (simulated clock, MemoryStore)', () => {
  for (const rate of [0.1, 10_000]) {
    it(`rate ${rate}/s`, async () => {
      let now = 1_700_000_000_000
      const store = new MemoryStore({ now: () => now })
      const burst = rate < 1 ? 1 : 100
      const limiter = new Limiter({
        store,
        policy: 'sim',
        limits: { b: tokenBucket({ capacity: burst, refillPerSecond: rate }) },
      })
      const stepMs = 1000 / (rate * 10)
      const decisions: Decision[] = []
      const simulatedMs = rate < 1 ? 200_000 : 5_000
      for (let t = 0; t <= simulatedMs; t += stepMs) {
        now = 1_700_000_000_000 + t
        decisions.push(await limiter.consume('s'))
      }
      // The simulated offer has no gaps, so here nearly all of burst + rate x T must pass.
      const { admitted, allowance } = checkAdmitted(decisions, burst, rate)
      expect(admitted).toBeGreaterThanOrEqual(Math.floor(0.99 * allowance))
      await store.close()
    })
  }
})

describe('long run against real stores', () => {
  let server: RedisServer
  let client: Redis
  beforeAll(async () => {
    server = await startRedis()
    client = new Redis(server.url)
  })
  afterAll(async () => {
    client.disconnect()
    await server.stop()
  })

  const stores: [string, () => Store][] = [
    ['MemoryStore', () => new MemoryStore()],
    ['RedisStore', () => new RedisStore({ client })],
  ]
  for (const [name, makeStore] of stores) {
    it(`${name}: 100/s offered at about 1,000/s for 3 s`, async () => {
      const limiter = new Limiter({
        store: makeStore(),
        policy: `long-${name}`,
        limits: { b: tokenBucket({ capacity: 10, refillPerSecond: 100 }) },
      })
      const decisions = await offer(limiter, 'steady', 3_000, 1)
      checkAdmitted(decisions, 10, 100)
    })

    it(`${name}: 10,000/s offered as fast as one process can for 2 s`, async () => {
      const limiter = new Limiter({
        store: makeStore(),
        policy: `fast-${name}`,
        limits: { b: tokenBucket({ capacity: 100, refillPerSecond: 10_000 }) },
      })
      const decisions = await offer(limiter, 'fast', 2_000, 256)
      checkAdmitted(decisions, 100, 10_000)
    })

    it(`${name}: 0.1/s — one burst unit, then exactly 10 s until the next`, async () => {
      const limiter = new Limiter({
        store: makeStore(),
        policy: `slow-${name}`,
        limits: { b: tokenBucket({ capacity: 1, refillPerSecond: 0.1 }) },
      })
      const first = await limiter.consume('slow')
      const second = await limiter.consume('slow')
      expect(first.allowed).toBe(true)
      expect(second.allowed).toBe(false)
      const expected = 10_000 - (second.now - first.now)
      expect(Math.abs(second.retryAfterMs - expected)).toBeLessThanOrEqual(1)
    })
  }
})
