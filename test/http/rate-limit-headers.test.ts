/**
 * Every rate-limit header sluice sends, read as a client reads it: the IETF fields with a
 * structured-field parser (draft-ietf-httpapi-ratelimit-headers: `q`, `r`, `t`, `w` non-negative
 * Integers, `w` ≥ 1), the legacy and OpenAI-style groups as integers and durations — over a long
 * mixed sequence of calls (requests, tokens, dollar budgets with fractional quotas, calls that can
 * never fit, settlements into debt, calls in flight, blocks) on a clock the test moves. Besides the
 * syntax: `r ≤ q`, `t ≤ w`, no limit left out, and `r`/`t` never tell a client to wait past the
 * moment its next call would pass (checked against what the limiter itself would decide then).
 */
import { parseList } from 'structured-headers'
import { describe, expect, it } from 'vitest'
import { tightestLimit } from '../../src/http/headers.js'
import { type CheckResult, quotaScale, type RateLimitState, Sluice, type Tier } from '../../src/http/index.js'
import {
  type Costs,
  concurrency,
  type Decision,
  fixedWindow,
  slidingLog,
  slidingWindow,
  tokenBucket,
} from '../../src/index.js'
import { MemoryStore } from '../../src/store/memory.js'

const SECOND = 1000
const MINUTE = 60 * SECOND
const HOUR = 60 * MINUTE
const DAY = 24 * HOUR

/** Quotas differ per unit, so that the OpenAI-style group's limit can be told by its `limit` value. */
const tiers: Record<string, Tier> = {
  anonymous: {
    scope: 'ip',
    limits: {
      hourly: slidingWindow({ limit: 20, windowMs: HOUR }), // the approximate counter: up to 2 w to forget
      exact: slidingLog({ limit: 12, windowMs: HOUR }),
      burst: tokenBucket({ capacity: 5, refillPerSecond: 1 }),
      slow: tokenBucket({ capacity: 8, refillPerSecond: 8 / ((10 * MINUTE) / SECOND) }), // one per 75 s
      tokens: tokenBucket({ capacity: 5_000, refillPerSecond: 5_000 / 3600, unit: 'tokens' }),
      daily: fixedWindow({ limit: 40_000, windowMs: DAY, unit: 'tokens' }),
      budget: fixedWindow({ limit: 0.0002, windowMs: 2 * HOUR, unit: 'usd' }),
      dollars: tokenBucket({ capacity: 0.1, refillPerSecond: 0.1 / 86_400, unit: 'usd' }),
      inflight: concurrency({ limit: 3, leaseMs: 10 * MINUTE }),
    },
  },
}
const NAMES = Object.keys(tiers.anonymous!.limits)

const COSTS: Costs[] = [
  { requests: 1 },
  { requests: 1 },
  { requests: 1, tokens: 300 },
  { requests: 1, tokens: 2_500 },
  { requests: 1, tokens: 9_000 }, // never fits the 5,000-token bucket
  { requests: 1, usd: 0.00005 },
  { requests: 1, usd: 0.000091 },
  { requests: 1, usd: 0.001 }, // never fits the $0.0002 budget
  { requests: 1, tokens: 120, usd: 0.000001 },
  { requests: 0, tokens: 50 },
]

/** A small seeded generator: the same sequence on every run. */
function random(seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (Math.imul(s, 1_664_525) + 1_013_904_223) >>> 0
    return s / 2 ** 32
  }
}

/** Go-style durations as sluice writes them (`1h2m3.5s`, `6m0s`, `12ms`), in ms. */
function durationMs(text: string): number {
  const m = /^(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+(?:\.\d+)?)s)?(?:(\d+)ms)?$/.exec(text)
  expect(m, `duration ${text}`).not.toBeNull()
  const [, h, min, s, ms] = m!
  return Number(h ?? 0) * HOUR + Number(min ?? 0) * MINUTE + Number(s ?? 0) * SECOND + Number(ms ?? 0)
}

const INTEGER = /^\d{1,15}$/

/** Each `name=value` parameter the draft defines must be a bare non-negative Integer. */
function expectIntegerParams(field: string): void {
  for (const [, name, value] of field.matchAll(/;(q|r|t|w)=([^;,]*)/g)) {
    expect(value, `${name} in ${field}`).toMatch(INTEGER)
  }
}

interface Policy {
  q: number
  w: number
  qu: string
}

function parsePolicy(field: string): Map<string, Policy> {
  expectIntegerParams(field)
  const out = new Map<string, Policy>()
  for (const [name, params] of parseList(field)) {
    expect(typeof name).toBe('string')
    const q = params.get('q')
    const w = params.get('w')
    const qu = params.get('qu') ?? 'requests'
    expect(Number.isInteger(q) && (q as number) >= 0, `q of ${String(name)}`).toBe(true)
    expect(Number.isInteger(w) && (w as number) >= 1, `w of ${String(name)}`).toBe(true)
    expect(typeof qu).toBe('string')
    out.set(name as string, { q: q as number, w: w as number, qu: qu as string })
  }
  return out
}

describe('rate-limit headers over a long mixed sequence', () => {
  it('parse as the draft says: integers, r ≤ q, t ≤ w, every limit listed, no wait past the next passing call', async () => {
    let clock = Date.UTC(2026, 0, 5, 6, 0, 0)
    const store = new MemoryStore({ now: () => clock })
    const core = new Sluice({
      store,
      tiers,
      logger: false,
      block: { after: 4, withinMs: MINUTE, durationsMs: [5 * MINUTE] },
    })
    const limiter = core.tierLimiter('anonymous')
    const subject = 'ip:192.0.2.10'
    const req = { method: 'POST', url: '/v1/chat', headers: {}, remoteAddress: '192.0.2.10' }
    const rand = random(12)
    const held: RateLimitState[] = []
    const seen = { allowed: 0, denied: 0, never: 0, blocked: 0, budgetTightest: 0 }
    /** Per limit, how often it was the one in RateLimit with nothing left and a `t`. */
    const emptied = new Map<string, number>()

    /** What the limiter would decide now for `costs`, charging nothing (no call in flight counted). */
    const wouldPass = (costs: Costs) => limiter.peek(subject, { requests: 0, concurrent: 0, ...costs })

    for (let step = 0; step < 700; step++) {
      clock += rand() < 0.55 ? Math.floor(rand() * 3 * SECOND) : Math.floor(rand() * 20 * MINUTE)
      const costs = COSTS[Math.floor(rand() * COSTS.length)]!
      const result: CheckResult = await core.check(req, undefined, costs)
      const decision = result.state.decision as Decision
      const h = result.headers
      if (result.proceed) seen.allowed++
      else {
        seen.denied++
        if (decision.blocked) seen.blocked++
        if (!Number.isFinite(decision.retryAfterMs)) seen.never++
      }

      // RateLimit-Policy: every limit, with integer parameters.
      const policy = parsePolicy(h['ratelimit-policy']!)
      expect([...policy.keys()]).toEqual(NAMES)
      expect(policy.get('budget')).toEqual({ q: 200, w: 2 * 3600, qu: 'usd-micros' })
      expect(policy.get('dollars')).toEqual({ q: 100_000, w: 86_400, qu: 'usd-micros' })

      // RateLimit: the tightest limit, always present.
      const rateLimit = h.ratelimit!
      expectIntegerParams(rateLimit)
      const items = parseList(rateLimit)
      expect(items).toHaveLength(1)
      const [name, params] = items[0]! as [string, Map<string, unknown>]
      const p = policy.get(name)!
      const r = params.get('r') as number
      const t = params.get('t') as number | undefined
      expect(Number.isInteger(r) && r >= 0 && r <= p.q, `r=${r} q=${p.q}`).toBe(true)
      if (t !== undefined) expect(Number.isInteger(t) && t >= 0 && t <= p.w, `t=${t} w=${p.w}`).toBe(true)
      if (name === 'budget' || name === 'dollars') seen.budgetTightest++
      const status = decision.limits.find((l) => l.name === name)!
      expect(r).toBe(Math.max(0, Math.floor(status.remaining * quotaScale(status) + 1e-6)))

      if (r === 0 && t !== undefined && !decision.blocked) {
        emptied.set(name, (emptied.get(name) ?? 0) + 1)
        // Nothing left: one more unit of this limit must not pass now…
        const unit = 1 / quotaScale(status)
        const one = await wouldPass({ [status.unit]: unit })
        expect(one.limits.find((l) => l.name === name)!.allowed, `r=0 for ${name}`).toBe(false)
        // …and t is no later than the moment one unit, or a call like this one, would pass.
        const again = await wouldPass(costs)
        const truth = Math.max(one.retryAfterMs, again.allowed ? 0 : again.retryAfterMs)
        if (Number.isFinite(truth))
          expect(t, `t of ${name} at step ${step}`).toBeLessThanOrEqual(Math.ceil(truth / SECOND))
      }

      // Legacy: the same limit's figures, integers; the reset within its window.
      expect(h['x-ratelimit-limit']).toBe(String(p.q))
      expect(h['x-ratelimit-remaining']).toBe(String(r))
      const reset = h['x-ratelimit-reset']
      expect(reset === undefined).toBe(t === undefined)
      if (reset !== undefined) {
        expect(reset).toMatch(INTEGER)
        expect(Number(reset) * SECOND - clock).toBeLessThanOrEqual(p.w * SECOND + SECOND)
      }

      // OpenAI style: integers, remaining ≤ limit, reset a duration within the limit's window.
      for (const unit of ['requests', 'tokens']) {
        const limit = h[`x-ratelimit-limit-${unit}`]!
        const remaining = h[`x-ratelimit-remaining-${unit}`]!
        expect(limit).toMatch(INTEGER)
        expect(remaining).toMatch(INTEGER)
        expect(Number(remaining)).toBeLessThanOrEqual(Number(limit))
        // …and they are the figures of the tightest limit of that unit, not of another limit.
        const own = tightestLimit(decision, unit)!
        const q = Math.round(own.limit * quotaScale(own))
        expect(limit, `x-ratelimit-limit-${unit}`).toBe(String(q))
        expect(remaining, `x-ratelimit-remaining-${unit}`).toBe(
          String(Math.min(q, Math.max(0, Math.floor(own.remaining * quotaScale(own) + 1e-6)))),
        )
        const which = [...policy.values()].find((x) => x.q === Number(limit) && x.qu === unit)!
        const resetText = h[`x-ratelimit-reset-${unit}`]
        if (resetText !== undefined) expect(durationMs(resetText)).toBeLessThanOrEqual(which.w * SECOND)
      }

      // Retry-After on refusals only, whole seconds ≥ 1; x-should-retry: false past 60 s.
      if (!result.proceed) {
        const after = h['retry-after']
        if (after === undefined) expect(h['x-should-retry']).toBe('false')
        else {
          expect(after).toMatch(/^[1-9]\d*$/)
          expect(h['x-should-retry'] === 'false').toBe(
            decision.blocked || Number(h['retry-after-ms']) > MINUTE,
          )
        }
      }

      // Settle some calls above their estimate (debt), hold some in flight, release others.
      if (result.proceed) {
        const roll = rand()
        if (roll < 0.2 && costs.tokens !== undefined) await result.state.settle({ tokens: costs.tokens * 3 })
        else if (roll < 0.35) held.push(result.state)
        else await result.state.settle()
      }
      if (held.length > 0 && rand() < 0.3) await held.shift()!.settle()
    }
    for (const state of held) await state.settle()
    await core.close()

    // The sequence went through every kind of answer the checks are about.
    expect(seen.allowed).toBeGreaterThan(50)
    expect(seen.denied).toBeGreaterThan(50)
    expect(seen.never).toBeGreaterThan(5)
    expect(seen.blocked).toBeGreaterThan(3)
    expect(seen.budgetTightest).toBeGreaterThan(5)
    // Emptied limits of every kind whose reset is told differently: a log, buckets, a fixed window.
    for (const name of ['exact', 'tokens', 'budget']) expect(emptied.get(name)).toBeGreaterThan(3)
  })
})

describe('rate-limit headers, case by case', () => {
  let clock = Date.UTC(2026, 0, 5, 7, 0, 0)
  const req = { method: 'POST', url: '/v1/chat', headers: {}, remoteAddress: '192.0.2.20' }
  const coreWith = (limits: Tier['limits']) =>
    new Sluice({
      store: new MemoryStore({ now: () => clock }),
      tiers: { anonymous: { scope: 'ip', limits } },
      logger: false,
    })
  const ratelimit = (r: CheckResult) => {
    const [name, params] = parseList(r.headers.ratelimit!)[0]! as [string, Map<string, number>]
    return { name, r: params.get('r'), t: params.get('t') }
  }

  it('a call that can never fit: t is an integer, not Infinity', async () => {
    const core = coreWith({
      tokens: tokenBucket({ capacity: 5_000_000, refillPerSecond: 5_000_000 / 3600, unit: 'tokens' }),
    })
    const refused = await core.check(req, undefined, { requests: 1, tokens: 6_000_000 })
    expect(refused.status).toBe(429)
    expect(refused.headers.ratelimit).toBe('"tokens";r=5000000;t=0')
    expect(refused.headers['x-should-retry']).toBe('false')
    expect(refused.headers['retry-after']).toBeUndefined()
  })

  it('an hourly sliding window counter: t and the resets stay within the hour', async () => {
    clock = Date.UTC(2026, 0, 5, 7, 59, 0)
    const core = coreWith({ hourly: slidingWindow({ limit: 20, windowMs: HOUR }) })
    for (let i = 0; i < 20; i++) expect((await core.check(req)).status).toBe(200)
    clock = Date.UTC(2026, 0, 5, 8, 5, 0)
    const next = await core.check(req) // the two-window counter lets this one through (see docs/http.md)
    expect(next.status).toBe(200)
    // It takes the counter until 10:00 to forget 08:05's call; the headers say at most 1 h.
    expect(ratelimit(next).t).toBeLessThanOrEqual(3600)
    expect(durationMs(next.headers['x-ratelimit-reset-requests']!)).toBeLessThanOrEqual(HOUR)
    expect(Number(next.headers['x-ratelimit-reset']) * SECOND - clock).toBeLessThanOrEqual(HOUR)
  })

  it('dollar budgets are listed in micro-dollars; a $0.159 remainder is r=159000, not 0', async () => {
    const core = coreWith({
      requests: slidingLog({ limit: 1000, windowMs: HOUR }),
      budget: tokenBucket({ capacity: 1, refillPerSecond: 1 / 86_400, unit: 'usd' }),
    })
    expect((await core.check(req, undefined, { requests: 1, usd: 0.841 })).status).toBe(200)
    const after = await core.check(req, undefined, { requests: 1, usd: 0 })
    expect(after.headers['ratelimit-policy']).toBe(
      '"requests";q=1000;w=3600, "budget";q=1000000;qu="usd-micros";w=86400',
    )
    expect(ratelimit(after)).toMatchObject({ name: 'budget', r: 159_000 })
    expect(after.headers['x-ratelimit-remaining']).toBe('159000')
    expect((await core.check(req, undefined, { requests: 1, usd: 0.001 })).status).toBe(200)
    const tiny = coreWith({ budget: fixedWindow({ limit: 0.0002, windowMs: 30 * DAY, unit: 'usd' }) })
    const first = await tiny.check(req, undefined, { usd: 0.000109 })
    expect(first.headers['ratelimit-policy']).toBe('"budget";q=200;qu="usd-micros";w=2592000')
    expect(ratelimit(first)).toMatchObject({ name: 'budget', r: 91 })
  })

  it('a sliding log emptied by this call: t is when its oldest call leaves the window, not an hour', async () => {
    clock = Date.UTC(2026, 0, 5, 9, 0, 0)
    const core = coreWith({ hourly: slidingLog({ limit: 20, windowMs: HOUR }) })
    let last: CheckResult | undefined
    for (let i = 0; i < 20; i++) {
      last = await core.check(req)
      clock += MINUTE
    }
    clock -= MINUTE // the 20th call was made at 09:19
    expect(ratelimit(last!)).toEqual({ name: 'hourly', r: 0, t: 41 * 60 })
    expect(last!.headers['x-ratelimit-reset-requests']).toBe('41m0s')
    clock += 41 * MINUTE + 1
    expect((await core.check(req)).status).toBe(200)
  })
})
