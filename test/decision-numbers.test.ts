import { describe, expect, it } from 'vitest'
import { calendar, Limiter, MemoryStore, slidingWindow, tokenBucket } from '../src/index.js'

// src/decision.ts makes one status (and one limit facts) object with strings in its number fields
// at load, so that V8 keeps those fields plain: the statuses a caller reads must still hold the
// exact numbers, of type number, through both the promise and the sync paths.
describe('decision numbers', () => {
  const limiter = () =>
    new Limiter({
      store: new MemoryStore(),
      policy: 'numbers',
      limits: {
        hourly: slidingWindow({ limit: 1e9, windowMs: 3_600_000 }),
        tokens: tokenBucket({ capacity: 1e12, refillPerSecond: 1, unit: 'tokens' }),
        spend: calendar({ limit: 5, period: 'day', unit: 'usd' }),
      },
    })
  const costs = { requests: 1, tokens: 300, usd: 0.123457 }
  const expected = [
    { name: 'hourly', limit: 1e9, windowSeconds: 3600, remaining: [1e9 - 1, 1e9 - 2] },
    { name: 'tokens', limit: 1e12, windowSeconds: 1e12, remaining: [1e12 - 300, 1e12 - 600] },
    { name: 'spend', limit: 5, windowSeconds: 86_400, remaining: [4.876543, 4.753086] },
  ]

  it('holds exact numbers in every status, promise and sync', async () => {
    for (const sync of [false, true]) {
      const l = limiter()
      for (let call = 0; call < 2; call++) {
        const d = sync ? l.consumeSync('s', costs) : await l.consume('s', costs)
        expect(d.allowed).toBe(true)
        expect(d.retryAfterMs).toBe(0)
        d.limits.forEach((s, i) => {
          const e = expected[i]!
          expect([s.name, s.limit, s.windowSeconds, s.remaining]).toEqual([
            e.name,
            e.limit,
            e.windowSeconds,
            e.remaining[call],
          ])
          for (const v of [s.limit, s.remaining, s.resetMs, s.windowSeconds]) expect(typeof v).toBe('number')
          expect(Number.isInteger(s.resetMs)).toBe(true)
        })
      }
    }
  })
})
