import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  type FixedWindowState,
  fixedWindowCheck,
  fixedWindowForce,
  fixedWindowRefund,
} from '../../src/core/fixed-window.js'
import { type SlidingLogState, slidingLogCheck, slidingLogRefund } from '../../src/core/sliding-log.js'
import {
  type SlidingWindowState,
  slidingWindowCheck,
  slidingWindowRefund,
} from '../../src/core/sliding-window.js'

const T0 = 1_700_000_000_000 // a multiple of every window below
const calls = fc.array(fc.tuple(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 0, max: 5 })), {
  maxLength: 200,
})

describe('fixed window', () => {
  it('admits exactly what a per-window count admits', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 20 }),
        fc.constantFrom(100, 1000),
        calls,
        (limit, windowMs, seq) => {
          const p = { limit, windowMs }
          let state: FixedWindowState | undefined
          const counts = new Map<number, number>()
          let now = T0
          for (const [dt, cost] of seq) {
            now += dt
            const w = Math.floor(now / windowMs)
            const used = counts.get(w) ?? 0
            const s = fixedWindowCheck(state, now, cost, p)
            expect(s.allowed).toBe(used + cost <= limit)
            if (s.allowed) {
              state = s.state
              counts.set(w, used + cost)
            } else {
              expect(s.retryAfterMs).toBe(cost > limit ? Number.POSITIVE_INFINITY : (w + 1) * windowMs - now)
            }
          }
        },
      ),
    )
  })

  it('refunds only into the window that was charged', () => {
    const p = { limit: 10, windowMs: 1000 }
    const s = fixedWindowForce(undefined, T0 + 10, 8, p)
    expect(fixedWindowRefund(s.state, T0 + 20, 5, T0 + 10, p).remaining).toBe(7)
    expect(fixedWindowRefund(s.state, T0 + 20, 50, T0 + 10, p).remaining).toBe(10)
    expect(fixedWindowRefund(s.state, T0 + 1010, 5, T0 + 10, p).remaining).toBe(10)
  })
})

describe('sliding log (exact)', () => {
  it('admits exactly what a brute-force count of the last window admits, and retry times are tight', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 20 }),
        fc.constantFrom(100, 1000),
        calls,
        (limit, windowMs, seq) => {
          const p = { limit, windowMs }
          let state: SlidingLogState | undefined
          const charged: [number, number][] = []
          let now = T0
          let id = 0
          for (const [dt, cost] of seq) {
            now += dt
            const used = charged.filter(([at]) => at > now - windowMs).reduce((a, [, c]) => a + c, 0)
            const s = slidingLogCheck(state, now, cost, String(++id), p)
            expect(s.allowed).toBe(used + cost <= limit)
            if (s.allowed) {
              state = s.state
              charged.push([now, cost])
            } else if (Number.isFinite(s.retryAfterMs)) {
              expect(slidingLogCheck(state, now + s.retryAfterMs, cost, 'x', p).allowed).toBe(true)
              expect(slidingLogCheck(state, now + s.retryAfterMs - 1, cost, 'x', p).allowed).toBe(false)
            }
          }
        },
      ),
    )
  })

  it('refunds the entry of the reservation itself', () => {
    const p = { limit: 10, windowMs: 1000 }
    const a = slidingLogCheck(undefined, T0, 4, 'a', p)
    const b = slidingLogCheck(a.state, T0 + 1, 3, 'b', p)
    const r = slidingLogRefund(b.state, T0 + 2, 3, 'a', p)
    expect(r.remaining).toBe(6)
    expect(r.state.map((e) => [e.id, e.cost])).toEqual([
      ['a', 1],
      ['b', 3],
    ])
    expect(slidingLogRefund(b.state, T0 + 2000, 3, 'a', p).remaining).toBe(10)
  })
})

describe('sliding window counter', () => {
  it('never lets the estimate exceed the limit, and retry times are tight to the millisecond', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 20 }), calls, (limit, seq) => {
        const p = { limit, windowMs: 1000 }
        let state: SlidingWindowState | undefined
        let now = T0
        for (const [dt, cost] of seq) {
          now += dt
          const s = slidingWindowCheck(state, now, cost, p)
          if (s.allowed) {
            state = s.state
            expect(s.remaining).toBeGreaterThanOrEqual(-1e-9)
          } else if (Number.isFinite(s.retryAfterMs)) {
            // The limiter reports whole milliseconds, rounded up.
            const wait = Math.ceil(s.retryAfterMs)
            expect(wait).toBeGreaterThan(0)
            expect(slidingWindowCheck(state, now + wait, cost, p).allowed).toBe(true)
            expect(slidingWindowCheck(state, now + wait - 1, cost, p).allowed).toBe(false)
          }
        }
      }),
    )
  })

  it('weights the previous window by its overlap', () => {
    const p = { limit: 10, windowMs: 1000 }
    const full = slidingWindowCheck(undefined, T0 + 500, 10, p)
    // A quarter into the next window, 75 % of the previous 10 still count.
    const s = slidingWindowCheck(full.state, T0 + 1250, 0, p)
    expect(s.remaining).toBeCloseTo(2.5, 9)
    expect(slidingWindowCheck(full.state, T0 + 1250, 3, p).allowed).toBe(false)
    expect(slidingWindowCheck(full.state, T0 + 1250, 2, p).allowed).toBe(true)
  })

  it('refunds into the window that was charged', () => {
    const p = { limit: 10, windowMs: 1000 }
    const s = slidingWindowCheck(undefined, T0 + 900, 6, p)
    const r = slidingWindowRefund(s.state, T0 + 1500, 6, T0 + 900, p)
    expect(r.remaining).toBe(10)
    expect(slidingWindowRefund(s.state, T0 + 2500, 6, T0 + 900, p).state.prev).toBe(0)
  })
})
