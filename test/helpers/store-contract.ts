import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ALGORITHMS } from '../../src/core/algorithms/index.js'
import {
  concurrency,
  fixedWindow,
  type LimitDefinition,
  Limiter,
  type LimiterOptions,
  SluiceInputError,
  slidingLog,
  slidingWindow,
  tokenBucket,
} from '../../src/index.js'
import { sleep } from './sleep.js'
import { calendarContract } from './store-contract-calendar.js'
import { composeContract } from './store-contract-compose.js'
import type { StoreHarness, StoreUnderTest } from './store-harness.js'

let policyCounter = 0
const freshPolicy = () => `contract-${process.pid}-${++policyCounter}`

/** A refill so slow that no test lasts long enough to see a unit come back. */
const NEGLIGIBLE = 1e-6

/** Every registered algorithm with a sample runs the per-kind tests: a new one cannot skip them. */
const KINDS: Record<string, (limit: number) => LimitDefinition> = Object.fromEntries(
  Object.values(ALGORITHMS)
    .filter((a) => a.sample !== null)
    .map((a) => [a.kind, a.sample as (limit: number) => LimitDefinition]),
)

/**
 * The one behaviour suite every store must pass unchanged. Time is the store's own clock, so
 * assertions that involve waiting compare against the `now` the store reports.
 */
export function storeContract(harness: StoreHarness): void {
  describe(`store contract: ${harness.name}`, () => {
    let s: StoreUnderTest
    const limiter = (limits: LimiterOptions['limits'], extra: Partial<LimiterOptions> = {}) =>
      new Limiter({ store: s.store, policy: freshPolicy(), limits, ...extra })
    /**
     * The longest TTL among a subject's keys (its state key, and the per-limit keys a store may use
     * for logs and leases), or undefined when none exists. Stores may place state differently.
     */
    const subjectTtl = async (l: Limiter, subject: string) => {
      const keys = l.keysFor(subject)
      const ttls = await Promise.all([keys.state, ...keys.limits].map((k) => s.ttlMs(k)))
      const present = ttls.filter((t): t is number => t !== undefined)
      return present.length === 0 ? undefined : Math.max(...present)
    }

    beforeAll(async () => {
      await harness.start()
      s = await harness.create()
    })
    afterAll(async () => {
      await harness.stop()
    })

    for (const [kind, make] of Object.entries(KINDS)) {
      it(`${kind}: admits exactly the limit, then denies with a retry time, charging nothing`, async () => {
        const l = limiter({ main: make(5) })
        const results = []
        for (let i = 0; i < 7; i++) results.push(await l.consume('u1'))
        expect(results.map((d) => d.allowed)).toEqual([true, true, true, true, true, false, false])
        expect(results.map((d) => d.limits[0]!.remaining)).toEqual([4, 3, 2, 1, 0, 0, 0])
        const denied = results[5]!
        expect(denied.deniedBy).toBe('main')
        expect(denied.retryAfterMs).toBeGreaterThan(0)
        expect(Number.isFinite(denied.retryAfterMs)).toBe(true)
        const after = await l.peek('u1', { requests: 0 })
        expect(after.limits[0]!.remaining).toBe(0)
      })

      it(`${kind}: cost-weighted, and a cost above the limit can never pass`, async () => {
        const l = limiter({ main: { ...make(1000), unit: 'tokens' } as LimitDefinition })
        const a = await l.consume('u', { tokens: 600 })
        expect(a.allowed).toBe(true)
        expect(a.limits[0]!.remaining).toBe(400)
        const b = await l.consume('u', { tokens: 401 })
        expect(b.allowed).toBe(false)
        const c = await l.consume('u', { tokens: 400 })
        expect(c.allowed).toBe(true)
        const huge = await l.consume('other', { tokens: 1001 })
        expect(huge.allowed).toBe(false)
        expect(huge.retryAfterMs).toBe(Number.POSITIVE_INFINITY)
        const fresh = await l.peek('other', { tokens: 0 })
        expect(fresh.limits[0]!.remaining).toBe(1000)
      })

      it(`${kind}: many concurrent calls admit exactly the limit`, async () => {
        const l = limiter({ main: make(100) })
        const decisions = await Promise.all(Array.from({ length: 300 }, () => l.consume('hot')))
        expect(decisions.filter((d) => d.allowed).length).toBe(100)
      })

      it(`${kind}: keys live exactly until full again, then the subject is fresh`, async () => {
        const l = limiter({ main: make(3) })
        await l.consume('ttl')
        const ttl = await subjectTtl(l, 'ttl')
        expect(ttl).toBeDefined()
        expect(ttl!).toBeGreaterThan(0)
        await l.reset('ttl')
        expect(await subjectTtl(l, 'ttl')).toBeUndefined()
        const d = await l.consume('ttl')
        expect(d.limits[0]!.remaining).toBe(2)
      })
    }

    it('a key expires after its time to full and the next call is fresh', async () => {
      const l = limiter({
        bucket: tokenBucket({ capacity: 2, refillPerSecond: 20 }),
        window: fixedWindow({ limit: 5, windowMs: 200 }),
        sliding: slidingWindow({ limit: 5, windowMs: 100 }),
        log: slidingLog({ limit: 5, windowMs: 150 }),
      })
      await l.consume('exp')
      await l.consume('exp')
      const ttl = await subjectTtl(l, 'exp')
      // The slowest to refill: the sliding window counts its charges until two windows have passed.
      expect(ttl!).toBeGreaterThan(0)
      expect(ttl!).toBeLessThanOrEqual(200)
      await sleep(450)
      expect(await subjectTtl(l, 'exp')).toBeUndefined()
      const d = await l.consume('exp')
      expect(d.limits.map((x) => x.remaining)).toEqual([1, 4, 4, 4])
    })

    it('calls of several policies issued together are each decided by their own limits', async () => {
      // A store may send them as one batch (RedisStore does, per event-loop turn).
      const a = limiter({ w: fixedWindow({ limit: 3, windowMs: 3_600_000 }) })
      const b = limiter(
        {
          burst: tokenBucket({ capacity: 5, refillPerSecond: NEGLIGIBLE }),
          tokens: slidingLog({ limit: 100, windowMs: 3_600_000, unit: 'tokens' }),
        },
        { block: { after: 100 } },
      )
      const c = limiter({ inflight: concurrency({ limit: 2 }) }, { alertAt: 0.5 })
      const calls = Array.from({ length: 8 }, () => [
        a.consume('mix'),
        b.consume('mix', { tokens: 30 }),
        c.peek('mix'),
      ])
      const ds = await Promise.all(calls.flat())
      const byPolicy = (l: Limiter) => ds.filter((d) => d.policy === l.policy)
      expect(byPolicy(a).filter((d) => d.allowed).length).toBe(3)
      expect(byPolicy(b).filter((d) => d.allowed).length).toBe(3) // 3 x 30 tokens of 100
      expect(byPolicy(c).every((d) => d.allowed && d.limits[0]!.remaining === 2)).toBe(true) // peek holds no slot
      const state = await b.peek('mix', { requests: 0, tokens: 0 })
      expect(state.limits.map((x) => x.remaining)).toEqual([2, 10])
    })

    it('all or nothing: a denial by one limit charges no other', async () => {
      const l = limiter({
        requests: fixedWindow({ limit: 100, windowMs: 3_600_000 }),
        tokens: tokenBucket({ capacity: 1000, refillPerSecond: NEGLIGIBLE, unit: 'tokens' }),
        log: slidingLog({ limit: 100, windowMs: 3_600_000 }),
      })
      expect((await l.consume('a', { tokens: 900 })).allowed).toBe(true)
      const denied = await l.consume('a', { tokens: 200 })
      expect(denied.allowed).toBe(false)
      expect(denied.deniedBy).toBe('tokens')
      const state = await l.peek('a', { requests: 0 })
      expect(state.limits.map((x) => x.remaining)).toEqual([99, 100, 99])
    })

    it('peek charges nothing and says what consume would', async () => {
      const l = limiter({ main: tokenBucket({ capacity: 2, refillPerSecond: NEGLIGIBLE }) })
      expect((await l.peek('p')).allowed).toBe(true)
      expect((await l.peek('p')).limits[0]!.remaining).toBe(1)
      await l.consume('p')
      await l.consume('p')
      const p = await l.peek('p')
      expect(p.allowed).toBe(false)
      expect(p.limits[0]!.remaining).toBe(0)
    })

    it('settle above the estimate drives the bucket into debt and delays the next call by exactly the debt', async () => {
      // 100 tokens per second: one token is 10 ms.
      const l = limiter({ tokens: tokenBucket({ capacity: 1000, refillPerSecond: 100, unit: 'tokens' }) })
      const r = await l.reserve('d', { tokens: 1000 })
      expect(r.allowed).toBe(true)
      await r.settle({ tokens: 1500 })
      const next = await l.consume('d', { tokens: 1 })
      expect(next.allowed).toBe(false)
      // TAT = t0 + 1500 tokens * 10 ms; one more token fits when TAT + 10 - now <= 1000 * 10.
      const expected = r.decision.now + 15_000 + 10 - 10_000 - next.now
      expect(Math.abs(next.retryAfterMs - expected)).toBeLessThanOrEqual(1)
      expect(next.retryAfterMs).toBeGreaterThan(4_900)
    })

    it('settle below the estimate refunds, never above full; settle twice is a no-op', async () => {
      const l = limiter({
        tokens: tokenBucket({ capacity: 1000, refillPerSecond: NEGLIGIBLE, unit: 'tokens' }),
        window: fixedWindow({ limit: 1000, windowMs: 3_600_000, unit: 'tokens' }),
        sliding: slidingWindow({ limit: 1000, windowMs: 3_600_000, unit: 'tokens' }),
        log: slidingLog({ limit: 1000, windowMs: 3_600_000, unit: 'tokens' }),
      })
      const r = await l.reserve('s', { tokens: 800 })
      expect(r.limits.map((x) => x.remaining)).toEqual([200, 200, 200, 200])
      const settled = await r.settle({ tokens: 300 })
      expect(settled.limits.map((x) => x.remaining)).toEqual([700, 700, 700, 700])
      const again = await r.settle({ tokens: 10 })
      expect(again).toBe(settled)
      await r.cancel()
      const state = await l.peek('s', { tokens: 0 })
      expect(state.limits.map((x) => x.remaining)).toEqual([700, 700, 700, 700])
    })

    it('cancel refunds the whole reservation', async () => {
      const l = limiter({
        requests: slidingLog({ limit: 10, windowMs: 3_600_000 }),
        tokens: tokenBucket({ capacity: 1000, refillPerSecond: NEGLIGIBLE, unit: 'tokens' }),
      })
      const r = await l.reserve('c', { tokens: 600 })
      expect(r.limits.map((x) => x.remaining)).toEqual([9, 400])
      const c = await r.cancel()
      expect(c.limits.map((x) => x.remaining)).toEqual([10, 1000])
      expect(await r.settle({ tokens: 5 })).toBe(c)
    })

    it('a denied reservation holds nothing and its settle and cancel do nothing', async () => {
      const l = limiter({
        tokens: tokenBucket({ capacity: 100, refillPerSecond: NEGLIGIBLE, unit: 'tokens' }),
      })
      const r = await l.reserve('n', { tokens: 101 })
      expect(r.allowed).toBe(false)
      await r.settle({ tokens: 50 })
      await r.cancel()
      expect((await l.peek('n', { tokens: 0 })).limits[0]!.remaining).toBe(100)
    })

    it('concurrency: leases are held until settle or cancel', async () => {
      const l = limiter({ inflight: concurrency({ limit: 2, leaseMs: 60_000 }) })
      const a = await l.reserve('k')
      const b = await l.reserve('k')
      const c = await l.reserve('k')
      expect([a.allowed, b.allowed, c.allowed]).toEqual([true, true, false])
      expect(c.deniedBy).toBe('inflight')
      // consume holds nothing, but still needs a free slot
      expect((await l.consume('k')).allowed).toBe(false)
      await a.settle()
      expect((await l.consume('k')).allowed).toBe(true)
      const d = await l.reserve('k')
      expect(d.allowed).toBe(true)
      await b.cancel()
      await b.cancel()
      await d.settle()
      const state = await l.peek('k', { concurrent: 0 })
      expect(state.limits[0]!.remaining).toBe(2)
      expect(await subjectTtl(l, 'k')).toBeUndefined()
    })

    it('concurrency: a lease that is never released expires', async () => {
      const l = limiter({ inflight: concurrency({ limit: 1, leaseMs: 150 }) })
      const a = await l.reserve('leak')
      expect(a.allowed).toBe(true)
      const denied = await l.reserve('leak')
      expect(denied.allowed).toBe(false)
      expect(denied.retryAfterMs).toBeLessThanOrEqual(150)
      await sleep(200)
      const b = await l.reserve('leak')
      expect(b.allowed).toBe(true)
      await a.settle() // releasing an expired lease is a no-op
      expect((await l.peek('leak', { concurrent: 1 })).allowed).toBe(false)
      await b.settle()
      expect((await l.peek('leak', { concurrent: 1 })).allowed).toBe(true)
    })

    it('fixed window: a retry after the reported time passes', async () => {
      const l = limiter({ w: fixedWindow({ limit: 2, windowMs: 300 }) })
      await l.consume('fw')
      await l.consume('fw')
      const denied = await l.consume('fw')
      if (denied.allowed) return // the window rolled over between calls; nothing to check
      expect(denied.retryAfterMs).toBeLessThanOrEqual(300)
      await sleep(denied.retryAfterMs + 5)
      expect((await l.consume('fw')).allowed).toBe(true)
    })

    it('sliding log: a retry after the reported time passes, and not much before', async () => {
      // A window long enough that four calls fit in it on a loaded machine (a Redis Cluster's round
      // trips at load ~10 can take tens of milliseconds each).
      const l = limiter({ w: slidingLog({ limit: 3, windowMs: 1_000 }) })
      for (let i = 0; i < 3; i++) await l.consume('sl')
      const denied = await l.consume('sl')
      expect(denied.allowed).toBe(false)
      expect(denied.retryAfterMs).toBeLessThanOrEqual(1_000)
      await sleep(denied.retryAfterMs + 5)
      expect((await l.consume('sl')).allowed).toBe(true)
    })

    it('token bucket: a retry after the reported time passes', async () => {
      // One token per 500 ms: at 10 a second a token came back between the calls at load ~10.
      const l = limiter({ b: tokenBucket({ capacity: 3, refillPerSecond: 2 }) })
      for (let i = 0; i < 3; i++) await l.consume('tb')
      const denied = await l.consume('tb')
      expect(denied.allowed).toBe(false)
      expect(denied.retryAfterMs).toBeLessThanOrEqual(500)
      await sleep(denied.retryAfterMs + 2)
      expect((await l.consume('tb')).allowed).toBe(true)
    })

    it('a huge bucket that refills once an aeon keeps exact counts and a TTL the store accepts', async () => {
      const l = limiter({ t: tokenBucket({ capacity: 1e9, refillPerSecond: 1e-9, unit: 'tokens' }) })
      for (let i = 0; i < 4; i++) expect((await l.consume('aeon', { tokens: 5_040 })).allowed).toBe(true)
      const d = await l.peek('aeon', { tokens: 0 })
      expect(d.limits[0]!.remaining).toBe(1e9 - 20_160)
      const ttl = await subjectTtl(l, 'aeon')
      expect(ttl).toBeGreaterThan(1e12)
      expect((await l.consume('aeon', { tokens: 1e9 })).retryAfterMs).toBeGreaterThan(1e12)
    })

    it('fractional units (usd) are exact', async () => {
      const l = limiter({ usd: fixedWindow({ limit: 1, windowMs: 86_400_000, unit: 'usd' }) })
      for (let i = 0; i < 10; i++) expect((await l.consume('$', { usd: 0.1 })).allowed).toBe(true)
      expect((await l.consume('$', { usd: 0.000001 })).allowed).toBe(false)
      const r = await l.reserve('$2', { usd: 0.35 })
      const settled = await r.settle({ usd: 0.123456 })
      expect(settled.limits[0]!.remaining).toBeCloseTo(0.876544, 6)
    })

    it('alerts once when usage crosses the threshold, per subject and limit', async () => {
      const l = limiter(
        {
          hourly: fixedWindow({ limit: 10, windowMs: 3_600_000 }),
          burst: tokenBucket({ capacity: 100, refillPerSecond: NEGLIGIBLE }),
        },
        { alertAt: 0.8 },
      )
      const alerts: string[][] = []
      for (let i = 0; i < 10; i++) alerts.push((await l.consume('al')).alerts.map((a) => a.name))
      expect(alerts.flat()).toEqual(['hourly'])
      expect(alerts[7]).toEqual(['hourly']) // the 8th request reaches 80 %
      await l.reset('al')
      const afterReset = []
      for (let i = 0; i < 9; i++) afterReset.push(...(await l.consume('al')).alerts.map((a) => a.name))
      expect(afterReset).toEqual(['hourly'])
      const other = []
      for (let i = 0; i < 9; i++) other.push(...(await l.consume('al2')).alerts.map((a) => a.name))
      expect(other).toEqual(['hourly'])
    })

    it('alerts exactly once under concurrency', async () => {
      const l = limiter({ hourly: fixedWindow({ limit: 60, windowMs: 3_600_000 }) }, { alertAt: 0.8 })
      const ds = await Promise.all(Array.from({ length: 50 }, () => l.consume('conc')))
      expect(ds.flatMap((d) => d.alerts).length).toBe(1)
    })

    it('blocks a subject that keeps getting denied, for growing periods, until unblocked', async () => {
      // One request a second; three quick denials start a 1 s block, the next offence a 60 s one.
      // (Not faster: at one per 100 ms a loaded machine took that long between two calls, and a
      // call meant to be denied was admitted.)
      const l = limiter(
        { m: tokenBucket({ capacity: 1, refillPerSecond: 1 }) },
        { block: { after: 3, withinMs: 60_000, durationsMs: [1_000, 60_000] } },
      )
      expect((await l.consume('b')).allowed).toBe(true)
      const denials = []
      for (let i = 0; i < 3; i++) denials.push(await l.consume('b'))
      expect(denials.map((d) => d.blocked)).toEqual([false, false, true])
      expect(denials[2]!.deniedBy).toBe('block')
      expect(denials[2]!.retryAfterMs).toBeLessThanOrEqual(1_000)
      expect(denials[2]!.retryAfterMs).toBeGreaterThan(900)
      const blocked = await l.consume('b')
      expect(blocked.blocked).toBe(true)
      expect((await l.consume('b-other')).allowed).toBe(true)
      await sleep(blocked.retryAfterMs + 5)
      const afterBlock = await l.consume('b')
      expect(afterBlock.blocked).toBe(false)
      expect(afterBlock.allowed).toBe(true)
      for (let i = 0; i < 2; i++) expect((await l.consume('b')).blocked).toBe(false)
      const second = await l.consume('b')
      expect(second.blocked).toBe(true)
      expect(second.retryAfterMs).toBeGreaterThan(59_000) // the next, longer block
      await l.unblock('b')
      const free = await l.consume('b')
      expect(free.blocked).toBe(false)
    })

    it('calls issued together see a block that one of them started, and an unblock issued with them', async () => {
      const l = limiter(
        { m: tokenBucket({ capacity: 2, refillPerSecond: 1e-6 }) },
        { block: { after: 2, withinMs: 60_000, durationsMs: [60_000] } },
      )
      // 2 admitted, 2 denials (the second starts the block), then 6 refused by the block itself.
      const ds = await Promise.all(Array.from({ length: 10 }, () => l.consume('together')))
      expect(ds.filter((d) => d.allowed).length).toBe(2)
      expect(ds.filter((d) => d.blockedNow).length).toBe(1)
      expect(ds.filter((d) => d.deniedBy === 'block').length).toBe(7)
      const [, after] = await Promise.all([l.unblock('together'), l.peek('together', { requests: 0 })])
      expect(after!.blocked).toBe(false)
    })

    it('denials only by calls in flight, or by a cost that can never fit, do not count toward a block', async () => {
      const l = limiter(
        {
          inflight: concurrency({ limit: 1, leaseMs: 60_000 }),
          tokens: tokenBucket({ capacity: 100, refillPerSecond: NEGLIGIBLE, unit: 'tokens' }),
        },
        { block: { after: 2, withinMs: 60_000, durationsMs: [60_000] } },
      )
      const held = await l.reserve('polite', { tokens: 1 })
      expect(held.allowed).toBe(true)
      for (let i = 0; i < 5; i++) {
        const d = await l.reserve('polite', { tokens: 1 })
        expect(d.deniedBy).toBe('inflight')
        expect(d.blocked).toBe(false)
      }
      for (let i = 0; i < 3; i++) expect((await l.consume('polite', { tokens: 1_000 })).blocked).toBe(false)
      await held.settle()
      // A rate limit still counts: two denials by the token bucket start the block.
      await l.consume('polite', { tokens: 99 })
      expect((await l.consume('polite', { tokens: 50 })).blocked).toBe(false)
      expect((await l.consume('polite', { tokens: 50 })).blocked).toBe(true)
    })

    it('bad input is refused before any store call, naming the bad value', async () => {
      const l = limiter({ main: tokenBucket({ capacity: 5, refillPerSecond: 1 }) })
      const before = s.calls()
      const bad: [string, unknown][] = [
        ['', undefined],
        ['u', { requests: Number.NaN }],
        ['u', { requests: -1 }],
        ['u', { requests: Number.POSITIVE_INFINITY }],
        ['u', { tokenz: 5 }],
        ['u', { concurrent: 2 }],
        ['u', 'five'],
      ]
      for (const [subject, costs] of bad) {
        await expect(l.consume(subject, costs as never)).rejects.toThrow(SluiceInputError)
        await expect(l.reserve(subject, costs as never)).rejects.toThrow(SluiceInputError)
      }
      await expect(l.consume('u', { tokenz: 5 } as never)).rejects.toThrow(/tokenz/)
      await expect(l.consume('u', { requests: -1 })).rejects.toThrow(/-1/)
      const r = await l.reserve('u')
      const afterReserve = s.calls()
      await expect(r.settle({ requests: Number.NaN })).rejects.toThrow(/NaN/)
      expect(s.calls()).toBe(afterReserve)
      expect(afterReserve).toBe(before + 1)
    })

    it('subjects that are long or unusual are hashed in keys', async () => {
      const l = limiter({ main: tokenBucket({ capacity: 5, refillPerSecond: 1 }) })
      const secret = `sk-${'x'.repeat(200)}`
      const keys = l.keysFor(secret)
      for (const key of [keys.state, ...keys.limits]) expect(key).not.toContain('xxxx')
      expect(l.keysFor('user:42').state).toContain('user:42')
      expect(l.keysFor('a{b}').state).not.toContain('a{b}')
      const d = await l.consume(secret)
      expect(d.subject).toBe(secret)
      expect(d.limits[0]!.remaining).toBe(4)
    })

    composeContract(() => s)
    calendarContract(() => s)
  })
}
