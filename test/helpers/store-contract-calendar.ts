import { expect, it } from 'vitest'
import { periodBounds } from '../../src/core/period.js'
import { calendar, Limiter, type LimiterOptions } from '../../src/index.js'
import type { StoreUnderTest } from './store-harness.js'

let counter = 0

/**
 * The calendar algorithm's budgets per day, ISO week and month, as every store must keep them:
 * reset times computed by the store (Redis in Lua, on its own clock) match core/period.ts.
 */
export function calendarContract(store: () => StoreUnderTest): void {
  const limiter = (limits: LimiterOptions['limits']) =>
    new Limiter({ store: store().store, policy: `calendar-${process.pid}-${++counter}`, limits })

  it('calendar: a budget resets at the start of the next day, ISO week or month, in UTC or a fixed offset', async () => {
    const cases = [
      { period: 'day', utcOffset: undefined, offset: 0 },
      { period: 'week', utcOffset: undefined, offset: 0 },
      { period: 'month', utcOffset: undefined, offset: 0 },
      { period: 'day', utcOffset: '+05:30', offset: 330 },
      { period: 'week', utcOffset: '-08:00', offset: -480 },
      { period: 'month', utcOffset: '+14:00', offset: 840 },
      { period: 'month', utcOffset: '-12:00', offset: -720 },
    ] as const
    for (const c of cases) {
      const l = limiter({
        budget: calendar({
          limit: 1,
          period: c.period,
          unit: 'usd',
          ...(c.utcOffset ? { utcOffset: c.utcOffset } : {}),
        }),
      })
      const spent = await l.consume('team', { usd: 0.75 })
      expect(spent.allowed).toBe(true)
      const { end } = periodBounds(c.period, spent.now, c.offset)
      expect(spent.limits[0]!.resetMs, `${c.period} ${c.utcOffset ?? 'UTC'}`).toBe(Math.ceil(end - spent.now))
      const denied = await l.consume('team', { usd: 0.5 })
      expect(denied.allowed).toBe(false)
      expect(denied.limits[0]!.remaining).toBe(0.25)
      const next = periodBounds(c.period, denied.now, c.offset).end
      expect(denied.retryAfterMs).toBe(Math.ceil(next - denied.now))
      // A cost above the whole budget never passes.
      expect((await l.consume('other', { usd: 2 })).retryAfterMs).toBe(Number.POSITIVE_INFINITY)
    }
  })

  it('calendar: reserve, settle and cancel keep the period exact', async () => {
    const l = limiter({ budget: calendar({ limit: 10, period: 'month', unit: 'usd' }) })
    const r = await l.reserve('k', { usd: 4 })
    expect(r.limits[0]!.remaining).toBe(6)
    expect((await r.settle({ usd: 1.5 })).limits[0]!.remaining).toBe(8.5)
    const over = await l.reserve('k', { usd: 8 })
    expect((await over.settle({ usd: 9 })).limits[0]!.remaining).toBe(0)
    const debt = await l.peek('k', { usd: 0 })
    expect(debt.limits[0]!.remaining).toBe(0)
    expect((await l.consume('k', { usd: 0.01 })).allowed).toBe(false)
    const c = await l.reserve('other', { usd: 3 })
    expect((await c.cancel()).limits[0]!.remaining).toBe(10)
  })
}
