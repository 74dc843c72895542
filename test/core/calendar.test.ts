import { describe, expect, it } from 'vitest'
import { parseConfig } from '../../src/gateway/config/load.js'
import { gatewayTiers } from '../../src/gateway/tiers.js'
import { calendar, Limiter, MemoryStore, SluiceInputError } from '../../src/index.js'

const at = (iso: string) => Date.parse(iso)

/** A limiter on a MemoryStore whose clock the test sets. */
function budget(options: Parameters<typeof calendar>[0]) {
  let now = 0
  const store = new MemoryStore({ now: () => now })
  const limiter = new Limiter({ store, policy: 'budget', limits: { usd: calendar(options) } })
  return {
    limiter,
    set: (iso: string) => {
      now = at(iso)
    },
  }
}

describe('calendar budgets', () => {
  it('a month spent stays spent until the 1st 00:00 UTC, then the whole budget is back', async () => {
    const b = budget({ limit: 1, period: 'month' })
    b.set('2026-01-31T10:00:00Z')
    expect((await b.limiter.consume('team', { usd: 0.84 })).allowed).toBe(true)
    const refused = await b.limiter.consume('team', { usd: 0.2 })
    expect(refused.allowed).toBe(false)
    expect(refused.retryAfterMs).toBe(at('2026-02-01T00:00:00Z') - at('2026-01-31T10:00:00Z'))
    b.set('2026-01-31T23:59:59.999Z')
    expect((await b.limiter.consume('team', { usd: 0.2 })).allowed).toBe(false)
    b.set('2026-02-01T00:00:00Z')
    const fresh = await b.limiter.consume('team', { usd: 0.2 })
    expect(fresh.allowed).toBe(true)
    expect(fresh.limits[0]!.remaining).toBe(0.8)
  })

  it('weeks start on Monday; days and weeks follow a fixed offset when one is given', async () => {
    const week = budget({ limit: 10, period: 'week', unit: 'usd' })
    week.set('2026-12-06T23:00:00Z') // a Sunday
    await week.limiter.consume('k', { usd: 10 })
    expect((await week.limiter.consume('k', { usd: 1 })).allowed).toBe(false)
    week.set('2026-12-07T00:00:00Z') // Monday
    expect((await week.limiter.consume('k', { usd: 1 })).allowed).toBe(true)

    const india = budget({ limit: 5, period: 'day', utcOffset: '+05:30' })
    india.set('2026-06-10T18:00:00Z') // 23:30 in India
    await india.limiter.consume('k', { usd: 5 })
    india.set('2026-06-10T18:29:59.999Z')
    expect((await india.limiter.consume('k', { usd: 1 })).allowed).toBe(false)
    india.set('2026-06-10T18:30:00Z') // midnight in India
    expect((await india.limiter.consume('k', { usd: 1 })).allowed).toBe(true)
  })

  it('a refund goes back only into the period it was charged in', async () => {
    const b = budget({ limit: 10, period: 'day' })
    b.set('2026-03-01T23:00:00Z')
    const r = await b.limiter.reserve('k', { usd: 6 })
    b.set('2026-03-02T01:00:00Z')
    const settled = await r.settle({ usd: 1 })
    // Yesterday's charge is gone with yesterday: nothing comes back into today.
    expect(settled.limits[0]!.remaining).toBe(10)
  })

  it('bad options are refused, naming the option; zone names are refused with the reason', () => {
    expect(() => calendar({ limit: 1, period: 'year' as never })).toThrow(
      /period must be one of day, week, month/,
    )
    expect(() => calendar({ limit: 0, period: 'day' })).toThrow(/calendar\(\)\.limit/)
    expect(() => calendar({ limit: 1, period: 'day', utcOffset: 'Europe/Paris' })).toThrow(SluiceInputError)
    expect(() => calendar({ limit: 1, period: 'day', utcOffset: 'Europe/Paris' })).toThrow(
      /utcOffset.*fixed offsets only/,
    )
    expect(() => calendar({ limit: 1, period: 'day', utcOffset: '+15:00' })).toThrow(/utcOffset/)
    expect(calendar({ limit: 1, period: 'day', utcOffset: '-08:00' }).offsetMinutes).toBe(-480)
  })

  it('in sluice.yaml: a tier budget per month in dollars; a bad period or zone is a config error naming the field', () => {
    const config = parseConfig({
      tiers: {
        service: {
          limits: { monthly: { kind: 'calendar', period: 'month', limit: 50, utcOffset: '+02:00' } },
        },
      },
    })
    const limit = gatewayTiers(config.tiers).service!.limits.monthly
    expect(limit).toEqual({ kind: 'calendar', unit: 'usd', limit: 50, period: 'month', offsetMinutes: 120 })
    expect(() =>
      parseConfig({ tiers: { service: { limits: { m: { kind: 'calendar', period: 'year', limit: 5 } } } } }),
    ).toThrow(/tiers\.service\.limits\.m\.period/)
    expect(() =>
      parseConfig({
        tiers: {
          service: {
            limits: { m: { kind: 'calendar', period: 'day', limit: 5, utcOffset: 'Europe/Paris' } },
          },
        },
      }),
    ).toThrow(/tiers\.service\.limits\.m\.utcOffset: expected a fixed UTC offset/)
  })
})
