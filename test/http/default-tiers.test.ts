/**
 * The default tiers keep the README's table over any rolling hour where they say "exact"
 * (anonymous, authenticated: sliding logs), and within the documented bound where they keep
 * constant-memory forms (premium, service: the two-window counter and a token bucket): fewer
 * than twice the hourly figure in any rolling hour, never more than it in a clock hour. On a clock
 * the test moves; the Redis store runs the same algorithms through the one contract suite.
 */
import { describe, expect, it } from 'vitest'
import { defaultTiers, Sluice } from '../../src/http/index.js'
import type { Costs } from '../../src/index.js'
import { MemoryStore } from '../../src/store/memory.js'

const SECOND = 1000
const MINUTE = 60 * SECOND
const HOUR = 60 * MINUTE
const at = (h: number, m: number, s = 0) => Date.UTC(2026, 0, 5, h, m, s)

/** A core with the default tiers on a clock the test sets; users pick their tier by a header. */
function defaults() {
  const clock = { now: at(7, 0) }
  const core = new Sluice({
    store: new MemoryStore({ now: () => clock.now }),
    logger: false,
    block: false,
    authenticate: (req: { headers: Record<string, string> }) => {
      const tier = req.headers['x-tier']
      return tier === undefined ? null : { id: `u-${tier}`, tier }
    },
  })
  const call = async (tier: string | undefined, costs: Costs = { requests: 1 }) => {
    const headers: Record<string, string> = tier === undefined ? {} : { 'x-tier': tier }
    const req = { method: 'POST', url: '/', headers, remoteAddress: '192.0.2.50' }
    const result = await core.check(req, req as never, costs)
    await result.state.settle()
    return result.status
  }
  return { clock, core, call }
}

describe('the default tiers that are exact over any rolling hour', () => {
  it('anonymous: 20 calls at 07:59, then none at 08:02 or 08:05 — the next only at 08:59', async () => {
    const { clock, call } = defaults()
    clock.now = at(7, 59)
    for (let i = 0; i < 20; i++) expect(await call(undefined)).toBe(200)
    for (const t of [at(8, 2), at(8, 5), at(8, 58, 59)]) {
      clock.now = t
      expect(await call(undefined)).toBe(429)
    }
    clock.now = at(8, 59) + 1
    expect(await call(undefined)).toBe(200)
  })

  it('anonymous: 10,000 tokens per rolling hour, not 10,000 plus what a bucket refills', async () => {
    const { clock, call } = defaults()
    clock.now = at(7, 30)
    expect(await call(undefined, { requests: 1, tokens: 10_000 })).toBe(200)
    clock.now = at(8, 29, 59)
    expect(await call(undefined, { requests: 1, tokens: 1 })).toBe(429)
    clock.now = at(8, 30) + 1
    expect(await call(undefined, { requests: 1, tokens: 10_000 })).toBe(200)
  })

  it('authenticated: 200 calls spread over 07:30–07:59, no 201st before 08:30', async () => {
    const { clock, call } = defaults()
    for (let i = 0; i < 200; i++) {
      clock.now = at(7, 30) + i * 9 * SECOND // 30 minutes, within the burst's refill
      expect(await call('authenticated')).toBe(200)
    }
    for (const t of [at(8, 0), at(8, 15), at(8, 29, 59)]) {
      clock.now = t
      expect(await call('authenticated')).toBe(429)
    }
    clock.now = at(8, 30) + 1 // the first call leaves the window: exactly one more fits
    expect(await call('authenticated')).toBe(200)
    expect(await call('authenticated')).toBe(429)
  })
})

describe('the default tiers that keep constant-memory forms, within their documented bound', () => {
  /**
   * The counter's worst case: the whole hourly figure just before a clock hour ends, then calls
   * spread over the next hour. Counts what passes within one rolling hour from the first call.
   */
  async function worstRollingHour(tier: 'premium' | 'service', perHour: number, costs: Costs) {
    const { clock, call } = defaults()
    // Bunched at the end of 07:xx at the pace of the service tier's burst refill (100/s).
    let passed = 0
    const start = at(8, 0) - Math.ceil(perHour / 100) * SECOND
    for (let i = 0; i < perHour; i++) {
      clock.now = start + i * 10
      if ((await call(tier, costs)) === 200) passed++
    }
    expect(passed).toBe(perHour)
    const step = HOUR / perHour
    for (let t = at(8, 0); t < start + HOUR; t += step) {
      clock.now = t
      if ((await call(tier, costs)) === 200) passed++
    }
    return passed
  }

  it('premium: 2,000 requests per clock hour, fewer than 4,000 in a rolling hour', async () => {
    const passed = await worstRollingHour('premium', 2_000, { requests: 1 })
    expect(passed).toBeLessThan(4_000)
    expect(passed).toBeGreaterThan(3_800) // the bound is nearly reached: it is a bound, not a typical figure
  })

  it('service: 10,000 requests per clock hour, fewer than 20,000 in a rolling hour', async () => {
    const passed = await worstRollingHour('service', 10_000, { requests: 1 })
    expect(passed).toBeLessThan(20_000)
    expect(passed).toBeGreaterThan(19_000)
  })

  it('premium tokens: a bucket of 1,000,000 refilled over the hour — at most 2,000,000 in a rolling hour', async () => {
    const { clock, call } = defaults()
    let tokens = 0
    clock.now = at(7, 0)
    for (let i = 0; i < 101; i++)
      if ((await call('premium', { requests: 1, tokens: 10_000 })) === 200) tokens += 10_000
    expect(tokens).toBe(1_000_000)
    for (let t = at(7, 0) + 36 * SECOND; t < at(8, 0); t += 36 * SECOND) {
      clock.now = t
      if ((await call('premium', { requests: 1, tokens: 10_000 })) === 200) tokens += 10_000
    }
    expect(tokens).toBeLessThanOrEqual(2_000_000)
    expect(tokens).toBeGreaterThan(1_900_000)
  })
})

describe('the README table', () => {
  it('states the default tiers as defaultTiers() makes them', () => {
    const tiers = defaultTiers()
    const figures = Object.fromEntries(
      Object.entries(tiers).map(([name, tier]) => {
        const l = tier.limits as Record<
          string,
          { kind: string; limit?: number; capacity?: number; refillPerSecond?: number }
        >
        return [
          name,
          {
            scope: tier.scope,
            hourly: [l.hourly!.kind, l.hourly!.limit],
            tokens: [l.tokens!.kind, l.tokens!.limit ?? l.tokens!.capacity],
            burst: l.burst === undefined ? undefined : [l.burst.capacity, l.burst.refillPerSecond],
          },
        ]
      }),
    )
    expect(figures).toEqual({
      anonymous: { scope: 'ip', hourly: ['slidingLog', 20], tokens: ['slidingLog', 10_000], burst: [20, 2] },
      authenticated: {
        scope: 'user',
        hourly: ['slidingLog', 200],
        tokens: ['slidingLog', 100_000],
        burst: [100, 10],
      },
      premium: {
        scope: 'user',
        hourly: ['slidingWindow', 2_000],
        tokens: ['tokenBucket', 1_000_000],
        burst: undefined,
      },
      service: {
        scope: 'key',
        hourly: ['slidingWindow', 10_000],
        tokens: ['tokenBucket', 5_000_000],
        burst: [1_000, 100],
      },
    })
  })
})
