import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { gcraCheck, gcraForce, gcraRefund } from '../../src/core/gcra.js'

const T0 = 1_700_000_000_000

/** The textbook bucket (tokens + last refill time), to hold GCRA to. */
function referenceBucket(capacity: number, ratePerMs: number) {
  let tokens = capacity
  let last = 0
  return (now: number, cost: number) => {
    tokens = Math.min(capacity, tokens + (now - last) * ratePerMs)
    last = now
    if (cost <= tokens + 1e-9) {
      tokens -= cost
      return true
    }
    return false
  }
}

describe('GCRA token bucket', () => {
  it('decides like the textbook token bucket', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 50 }),
        fc.constantFrom(1, 2, 4, 5, 10, 20, 50, 100, 1000), // refills whose interval is exact in binary
        fc.array(fc.tuple(fc.integer({ min: 0, max: 400 }), fc.integer({ min: 0, max: 60 })), {
          maxLength: 200,
        }),
        (capacity, perSecond, calls) => {
          const p = { capacity, intervalMs: 1000 / perSecond }
          const reference = referenceBucket(capacity, perSecond / 1000)
          let tat: number | undefined
          let now = 0
          for (const [dt, cost] of calls) {
            now += dt
            const s = gcraCheck(tat, T0 + now, cost, p)
            expect(s.allowed).toBe(reference(now, cost))
            if (s.allowed) tat = s.state
          }
        },
      ),
    )
  })

  it('never admits more than capacity + rate x elapsed', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0.5, max: 1000, noNaN: true }),
        fc.double({ min: 0.01, max: 10_000, noNaN: true }),
        fc.array(
          fc.tuple(fc.double({ min: 0, max: 50, noNaN: true }), fc.double({ min: 0, max: 20, noNaN: true })),
          {
            maxLength: 300,
          },
        ),
        (capacity, perSecond, calls) => {
          const p = { capacity, intervalMs: 1000 / perSecond }
          let tat: number | undefined
          let now = T0
          let admitted = 0
          for (const [dt, cost] of calls) {
            now += dt
            const s = gcraCheck(tat, now, cost, p)
            if (s.allowed) {
              tat = s.state
              admitted += cost
            }
          }
          const elapsed = now - T0
          expect(admitted).toBeLessThanOrEqual(
            capacity + (perSecond * elapsed) / 1000 + 1e-6 * (1 + admitted),
          )
        },
      ),
    )
  })

  it('a denied call fits exactly after retryAfterMs, and not a millisecond sooner', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 100 }),
        fc.constantFrom(1, 2, 5, 10, 100),
        fc.integer({ min: 1, max: 100 }),
        fc.integer({ min: 1, max: 100 }),
        (capacity, perSecond, used, cost) => {
          fc.pre(cost <= capacity)
          const p = { capacity, intervalMs: 1000 / perSecond }
          const tat = gcraForce(undefined, T0, used, p).state
          const s = gcraCheck(tat, T0, cost, p)
          if (s.allowed) return
          expect(gcraCheck(tat, T0 + s.retryAfterMs, cost, p).allowed).toBe(true)
          expect(gcraCheck(tat, T0 + s.retryAfterMs - 1, cost, p).allowed).toBe(false)
        },
      ),
    )
  })

  it('a cost above capacity can never pass', () => {
    const s = gcraCheck(undefined, T0, 11, { capacity: 10, intervalMs: 100 })
    expect(s.allowed).toBe(false)
    expect(s.retryAfterMs).toBe(Number.POSITIVE_INFINITY)
    expect(s.remaining).toBe(10)
  })

  it('forced charges go into debt; the next call waits out exactly the debt', () => {
    const p = { capacity: 100, intervalMs: 10 }
    const empty = gcraForce(undefined, T0, 100, p)
    expect(empty.remaining).toBe(0)
    const debt = gcraForce(empty.state, T0, 50, p)
    expect(debt.remaining).toBe(-50)
    expect(debt.resetMs).toBe(1_500)
    const next = gcraCheck(debt.state, T0, 1, p)
    expect(next.retryAfterMs).toBe(500 + 10)
  })

  it('refunds never go above full', () => {
    const p = { capacity: 100, intervalMs: 10 }
    const s = gcraForce(undefined, T0, 30, p)
    const refunded = gcraRefund(s.state, T0, 1_000, p)
    expect(refunded.remaining).toBe(100)
    expect(refunded.resetMs).toBe(0)
    const partial = gcraRefund(s.state, T0, 10, p)
    expect(partial.remaining).toBe(80)
  })

  it('reset time is the time until full, and remaining refills linearly', () => {
    const p = { capacity: 10, intervalMs: 100 }
    const s = gcraForce(undefined, T0, 4, p)
    expect(s.resetMs).toBe(400)
    expect(gcraCheck(s.state, T0 + 250, 0, p).remaining).toBeCloseTo(8.5, 9)
  })
})
