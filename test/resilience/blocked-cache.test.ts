import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  concurrency,
  fixedWindow,
  type LimitDefinition,
  Limiter,
  type LimiterOptions,
  MemoryStore,
  type Reservation,
  type Store,
  type StoreOp,
  type StoreResult,
  slidingLog,
  slidingWindow,
  tokenBucket,
} from '../../src/index.js'
import { BlockedKeyCache } from '../../src/store/blocked-cache.js'

/** Counts the ops that reach the store behind the cache. */
class CountingStore implements Store {
  calls = 0
  constructor(readonly inner: MemoryStore) {}
  execute(op: StoreOp): Promise<StoreResult> {
    this.calls++
    return this.inner.execute(op)
  }
  ping() {
    return this.inner.ping()
  }
  close() {
    return this.inner.close()
  }
}

/** One manual clock for the store and the cache: time moves only when a test says so. */
function setup(limits: LimiterOptions['limits'], extra: Partial<LimiterOptions> = {}, maxAgeMs = 60_000) {
  const clock = { t: 1_700_000_000_000 }
  const now = () => clock.t
  const counting = new CountingStore(new MemoryStore({ now }))
  const cache = new BlockedKeyCache({ now, maxAgeMs })
  const limiter = new Limiter({ store: cache.wrap(counting), policy: 'cache-test', limits, ...extra })
  return { clock, counting, cache, limiter }
}

const SLOW = 1e-6

describe('blocked-key cache', () => {
  it('answers a subject that keeps hammering an exhausted limit without store calls', async () => {
    const { counting, limiter, cache } = setup({ burst: tokenBucket({ capacity: 5, refillPerSecond: SLOW }) })
    for (let i = 0; i < 5; i++) expect((await limiter.consume('u')).allowed).toBe(true)
    const first = await limiter.consume('u')
    expect(first.allowed).toBe(false)
    const before = counting.calls
    for (let i = 0; i < 1000; i++) {
      const d = await limiter.consume('u')
      expect(d.allowed).toBe(false)
      expect(d.deniedBy).toBe('burst')
      expect(d.retryAfterMs).toBeGreaterThan(0)
    }
    expect(counting.calls).toBe(before)
    expect(cache.hits).toBe(1000)
    // Another subject is not affected.
    expect((await limiter.consume('v')).allowed).toBe(true)
  })

  it('denies from the cache only ops that cost at least as much on the denying limit', async () => {
    const { counting, limiter } = setup({
      tokens: tokenBucket({ capacity: 1000, refillPerSecond: SLOW, unit: 'tokens' }),
    })
    expect((await limiter.consume('u', { tokens: 900 })).allowed).toBe(true)
    expect((await limiter.consume('u', { tokens: 200 })).allowed).toBe(false)
    const calls = counting.calls
    expect((await limiter.consume('u', { tokens: 500 })).allowed).toBe(false)
    expect(counting.calls).toBe(calls) // more than the denied cost: known to fail
    expect((await limiter.consume('u', { tokens: 100 })).allowed).toBe(true)
    expect(counting.calls).toBe(calls + 1) // less: the store decides
  })

  it('stops answering once the retry time has come', async () => {
    const { clock, counting, limiter } = setup({ b: tokenBucket({ capacity: 1, refillPerSecond: 10 }) })
    expect((await limiter.consume('u')).allowed).toBe(true)
    const denied = await limiter.consume('u')
    expect(denied.allowed).toBe(false)
    expect(denied.retryAfterMs).toBe(100)
    const calls = counting.calls
    clock.t += 99
    const cached = await limiter.consume('u')
    expect(cached.allowed).toBe(false)
    expect(cached.retryAfterMs).toBe(1)
    expect(counting.calls).toBe(calls)
    clock.t += 1
    expect((await limiter.consume('u')).allowed).toBe(true)
    expect(counting.calls).toBe(calls + 1)
  })

  it('trusts a denial for at most maxAgeMs', async () => {
    const { clock, counting, limiter } = setup(
      { w: fixedWindow({ limit: 1, windowMs: 3_600_000 }) },
      {},
      1_000,
    )
    clock.t = Math.floor(clock.t / 3_600_000) * 3_600_000 // start of a window: it lasts an hour
    await limiter.consume('u')
    await limiter.consume('u')
    const calls = counting.calls
    clock.t += 999
    expect((await limiter.consume('u')).allowed).toBe(false)
    expect(counting.calls).toBe(calls)
    clock.t += 1
    expect((await limiter.consume('u')).allowed).toBe(false)
    expect(counting.calls).toBe(calls + 1) // asked the store again, and learned again
    expect((await limiter.consume('u')).allowed).toBe(false)
    expect(counting.calls).toBe(calls + 1)
  })

  it('never caches a denial by a concurrency limit: a lease can be released any time', async () => {
    const { counting, limiter } = setup({ inflight: concurrency({ limit: 1, leaseMs: 60_000 }) })
    const held = await limiter.reserve('u')
    expect(held.allowed).toBe(true)
    const calls = counting.calls
    for (let i = 0; i < 3; i++) expect((await limiter.reserve('u')).allowed).toBe(false)
    expect(counting.calls).toBe(calls + 3)
    await held.settle()
    expect((await limiter.reserve('u')).allowed).toBe(true)
  })

  it('a refund, a reset or an unblock forgets the cached denial', async () => {
    const { limiter, counting } = setup({
      tokens: tokenBucket({ capacity: 1000, refillPerSecond: SLOW, unit: 'tokens' }),
    })
    const r = await limiter.reserve('u', { tokens: 1000 })
    expect((await limiter.consume('u', { tokens: 10 })).allowed).toBe(false)
    const calls = counting.calls
    expect((await limiter.consume('u', { tokens: 10 })).allowed).toBe(false)
    expect(counting.calls).toBe(calls)
    await r.settle({ tokens: 500 }) // refunds 500
    expect((await limiter.consume('u', { tokens: 10 })).allowed).toBe(true)

    await limiter.consume('u', { tokens: 490 })
    expect((await limiter.consume('u', { tokens: 10 })).allowed).toBe(false)
    await limiter.reset('u')
    expect((await limiter.consume('u', { tokens: 10 })).allowed).toBe(true)
  })

  it('counts every strike toward a block, then answers the block from the cache until unblocked', async () => {
    const { counting, limiter } = setup(
      { m: tokenBucket({ capacity: 1, refillPerSecond: SLOW }) },
      { block: { after: 3, withinMs: 60_000, durationsMs: [60_000] } },
    )
    expect((await limiter.consume('b')).allowed).toBe(true)
    const calls = counting.calls
    const denials = []
    for (let i = 0; i < 3; i++) denials.push(await limiter.consume('b'))
    expect(counting.calls).toBe(calls + 3) // each denial reached the store and counted
    expect(denials.map((d) => d.blocked)).toEqual([false, false, true])
    for (let i = 0; i < 100; i++) {
      const d = await limiter.consume('b')
      expect(d.blocked).toBe(true)
      expect(d.deniedBy).toBe('block')
    }
    expect(counting.calls).toBe(calls + 3)
    await limiter.unblock('b')
    const after = await limiter.consume('b')
    expect(after.blocked).toBe(false)
  })

  it('is bounded: the oldest subject is dropped first', async () => {
    const clock = { t: 1_000 }
    const now = () => clock.t
    const cache = new BlockedKeyCache({ now, maxEntries: 3 })
    const limiter = new Limiter({
      store: cache.wrap(new MemoryStore({ now })),
      policy: 'bounded',
      limits: { b: tokenBucket({ capacity: 1, refillPerSecond: SLOW }) },
    })
    for (const s of ['a', 'b', 'c', 'd']) {
      await limiter.consume(s)
      await limiter.consume(s)
    }
    expect(cache.size).toBe(3)
  })

  it('decides exactly as the store alone would, for any sequence of calls (property)', async () => {
    type Step =
      | { kind: 'consume'; subject: number; tokens: number; requests: number }
      | { kind: 'reserve'; subject: number; tokens: number }
      | { kind: 'settle'; which: number; tokens: number }
      | { kind: 'cancel'; which: number }
      | { kind: 'reset' | 'unblock'; subject: number }
      | { kind: 'wait'; ms: number }
      | { kind: 'waitRetry'; extra: number }
    const step: fc.Arbitrary<Step> = fc.oneof(
      {
        weight: 6,
        arbitrary: fc.record({
          kind: fc.constant('consume' as const),
          subject: fc.nat(2),
          tokens: fc.integer({ min: 0, max: 400 }),
          requests: fc.constantFrom(0, 1, 1, 2),
        }),
      },
      {
        weight: 2,
        arbitrary: fc.record({
          kind: fc.constant('reserve' as const),
          subject: fc.nat(2),
          tokens: fc.integer({ min: 0, max: 400 }),
        }),
      },
      {
        weight: 2,
        arbitrary: fc.record({
          kind: fc.constant('settle' as const),
          which: fc.nat(20),
          tokens: fc.integer({ min: 0, max: 400 }),
        }),
      },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('cancel' as const), which: fc.nat(20) }) },
      {
        weight: 1,
        arbitrary: fc.record({
          kind: fc.constantFrom('reset' as const, 'unblock' as const),
          subject: fc.nat(2),
        }),
      },
      {
        weight: 3,
        arbitrary: fc.record({ kind: fc.constant('wait' as const), ms: fc.integer({ min: 0, max: 250 }) }),
      },
      // To the edge of the last retry time, where a cache that trusts a denial too long would show.
      {
        weight: 2,
        arbitrary: fc.record({
          kind: fc.constant('waitRetry' as const),
          extra: fc.integer({ min: -1, max: 1 }),
        }),
      },
    )
    const limitSets: Record<string, LimitDefinition>[] = [
      {
        tokens: tokenBucket({ capacity: 1000, refillPerSecond: 200, unit: 'tokens' }),
        requests: fixedWindow({ limit: 5, windowMs: 1_000 }),
      },
      {
        tokens: slidingWindow({ limit: 1200, windowMs: 2_000, unit: 'tokens' }),
        requests: slidingLog({ limit: 4, windowMs: 1_500 }),
        inflight: concurrency({ limit: 2, leaseMs: 1_000 }),
      },
    ]
    let cacheHits = 0
    await fc.assert(
      fc.asyncProperty(
        fc.array(step, { minLength: 20, maxLength: 150, size: 'max' }),
        fc.nat(limitSets.length - 1),
        fc.boolean(),
        fc.integer({ min: 50, max: 2_000 }),
        async (steps, set, withBlock, maxAgeMs) => {
          const clock = { t: 1_700_000_000_123 }
          const now = () => clock.t
          const options = {
            policy: 'prop',
            limits: limitSets[set]!,
            block: withBlock ? { after: 3, withinMs: 1_000, durationsMs: [700, 1_500] } : false,
          }
          const cache = new BlockedKeyCache({ now, maxAgeMs })
          const cached = new Limiter({ ...options, store: cache.wrap(new MemoryStore({ now })) })
          const plain = new Limiter({ ...options, store: new MemoryStore({ now }) })
          const reservations: [Reservation, Reservation][] = []
          const seen: string[] = []
          const expected: string[] = []
          let lastRetry = 0
          const outcome = (d: { allowed: boolean; blocked: boolean; retryAfterMs: number }) => {
            if (!d.allowed && Number.isFinite(d.retryAfterMs)) lastRetry = d.retryAfterMs
            return d.allowed ? 'ok' : d.blocked ? 'blocked' : 'denied'
          }
          for (const s of steps) {
            if (s.kind === 'wait') {
              clock.t += s.ms
            } else if (s.kind === 'waitRetry') {
              clock.t += Math.max(0, lastRetry + s.extra)
            } else if (s.kind === 'consume') {
              const costs = { tokens: s.tokens, requests: s.requests }
              seen.push(outcome(await cached.consume(`s${s.subject}`, costs)))
              expected.push(outcome(await plain.consume(`s${s.subject}`, costs)))
            } else if (s.kind === 'reserve') {
              const a = await cached.reserve(`s${s.subject}`, { tokens: s.tokens })
              const b = await plain.reserve(`s${s.subject}`, { tokens: s.tokens })
              seen.push(outcome(a.decision))
              expected.push(outcome(b.decision))
              reservations.push([a, b])
            } else if (s.kind === 'settle' || s.kind === 'cancel') {
              const pair = reservations[s.which % Math.max(1, reservations.length)]
              if (pair === undefined) continue
              if (s.kind === 'settle') {
                await pair[0].settle({ tokens: s.tokens })
                await pair[1].settle({ tokens: s.tokens })
              } else {
                await pair[0].cancel()
                await pair[1].cancel()
              }
            } else {
              await cached[s.kind](`s${s.subject}`)
              await plain[s.kind](`s${s.subject}`)
            }
          }
          expect(seen).toEqual(expected)
          cacheHits += cache.hits
        },
      ),
      { numRuns: 300 },
    )
    expect(cacheHits).toBeGreaterThan(100) // the runs did exercise the cache
  })
})
