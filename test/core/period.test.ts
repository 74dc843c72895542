import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { SluiceInputError } from '../../src/core/errors.js'
import { type CalendarPeriod, parseUtcOffset, periodBounds } from '../../src/core/period.js'

const DAY = 86_400_000
/** 1970 … 2200, to the millisecond. */
const time = fc.integer({ min: 0, max: Date.UTC(2200, 0, 1) })
const offset = fc.integer({ min: -720, max: 840 })
const period = fc.constantFrom<CalendarPeriod>('day', 'week', 'month')

/** The wall clock at `ms` in the calendar of `offsetMinutes`. */
const wall = (ms: number, offsetMinutes: number) => new Date(ms + offsetMinutes * 60_000)

describe('periodBounds', () => {
  it('contains the time it was asked about, and starts at a wall-clock midnight', () => {
    fc.assert(
      fc.property(period, time, offset, (p, now, off) => {
        const { start, end } = periodBounds(p, now, off)
        expect(start).toBeLessThanOrEqual(now)
        expect(now).toBeLessThan(end)
        for (const edge of [start, end]) {
          const w = wall(edge, off)
          expect([w.getUTCHours(), w.getUTCMinutes(), w.getUTCSeconds(), w.getUTCMilliseconds()]).toEqual([
            0, 0, 0, 0,
          ])
        }
      }),
      { numRuns: 2000 },
    )
  })

  it('days last 24 h; weeks run Monday to Monday; months run from the 1st to the next 1st', () => {
    fc.assert(
      fc.property(time, offset, (now, off) => {
        const day = periodBounds('day', now, off)
        expect(day.end - day.start).toBe(DAY)
        expect(wall(day.start, off).getUTCDate()).toBe(wall(now, off).getUTCDate())

        const week = periodBounds('week', now, off)
        expect(week.end - week.start).toBe(7 * DAY)
        expect(wall(week.start, off).getUTCDay()).toBe(1) // Monday
        expect(now - week.start).toBeLessThan(7 * DAY)

        const month = periodBounds('month', now, off)
        const startWall = wall(month.start, off)
        const nowWall = wall(now, off)
        expect(startWall.getUTCDate()).toBe(1)
        expect(wall(month.end, off).getUTCDate()).toBe(1)
        expect([startWall.getUTCFullYear(), startWall.getUTCMonth()]).toEqual([
          nowWall.getUTCFullYear(),
          nowWall.getUTCMonth(),
        ])
        expect((month.end - month.start) / DAY).toBeGreaterThanOrEqual(28)
        expect((month.end - month.start) / DAY).toBeLessThanOrEqual(31)
      }),
      { numRuns: 2000 },
    )
  })

  it('tiles time: every instant of a period maps to the same bounds, and the next period starts at its end', () => {
    fc.assert(
      fc.property(period, time, offset, fc.double({ min: 0, max: 1, noNaN: true }), (p, now, off, f) => {
        const bounds = periodBounds(p, now, off)
        const inside = bounds.start + Math.floor(f * (bounds.end - bounds.start - 1))
        expect(periodBounds(p, inside, off)).toEqual(bounds)
        expect(periodBounds(p, bounds.end, off).start).toBe(bounds.end)
        expect(periodBounds(p, bounds.start - 1, off).end).toBe(bounds.start)
      }),
      { numRuns: 2000 },
    )
  })

  it('knows the calendar: leap years, ISO weeks across a new year, and offsets', () => {
    const at = (iso: string) => Date.parse(iso)
    const iso = (b: { start: number; end: number }) => [
      new Date(b.start).toISOString(),
      new Date(b.end).toISOString(),
    ]
    expect(iso(periodBounds('month', at('2024-02-29T23:59:59.999Z')))).toEqual([
      '2024-02-01T00:00:00.000Z',
      '2024-03-01T00:00:00.000Z',
    ])
    expect(iso(periodBounds('month', at('2023-12-31T12:00:00Z')))).toEqual([
      '2023-12-01T00:00:00.000Z',
      '2024-01-01T00:00:00.000Z',
    ])
    // 2027-01-01 is a Friday: its week began on Monday 2026-12-28.
    expect(iso(periodBounds('week', at('2027-01-01T10:00:00Z')))).toEqual([
      '2026-12-28T00:00:00.000Z',
      '2027-01-04T00:00:00.000Z',
    ])
    // A Sunday 23:30 UTC is already Monday at UTC+05:30: a new week there.
    expect(iso(periodBounds('week', at('2026-11-29T23:30:00Z'), 330))).toEqual([
      '2026-11-29T18:30:00.000Z',
      '2026-12-06T18:30:00.000Z',
    ])
    expect(iso(periodBounds('day', at('2026-11-27T02:00:00Z'), -480))).toEqual([
      '2026-11-26T08:00:00.000Z',
      '2026-11-27T08:00:00.000Z',
    ])
  })

  it('refuses a bad period, time or offset with a clear error', () => {
    expect(() => periodBounds('year' as CalendarPeriod, 0)).toThrow(/day, week, month/)
    expect(() => periodBounds('day', Number.NaN)).toThrow(SluiceInputError)
    expect(() => periodBounds('day', 0, 900)).toThrow(/-720 to \+840/)
    expect(() => periodBounds('day', 0, 1.5)).toThrow(SluiceInputError)
  })
})

describe('parseUtcOffset', () => {
  it('reads fixed offsets and refuses zone names', () => {
    expect(parseUtcOffset('Z')).toBe(0)
    expect(parseUtcOffset('UTC')).toBe(0)
    expect(parseUtcOffset('+05:30')).toBe(330)
    expect(parseUtcOffset('-08:00')).toBe(-480)
    expect(parseUtcOffset('+0545')).toBe(345)
    expect(parseUtcOffset('+5')).toBe(300)
    expect(parseUtcOffset('UTC-03:00')).toBe(-180)
    expect(parseUtcOffset(60)).toBe(60)
    for (const bad of ['Europe/Paris', '+25:00', '+05:60', '', '5', null, '+14:01']) {
      expect(() => parseUtcOffset(bad)).toThrow(SluiceInputError)
    }
  })

  it('agrees with periodBounds for every offset it reads', () => {
    fc.assert(
      fc.property(fc.integer({ min: -12, max: 14 }), fc.constantFrom(0, 15, 30, 45), time, (h, m, now) => {
        const minutes = Math.sign(h || 1) * (Math.abs(h) * 60 + m)
        if (minutes < -720 || minutes > 840) return
        const text = `${minutes < 0 ? '-' : '+'}${String(Math.abs(h)).padStart(2, '0')}:${String(m).padStart(2, '0')}`
        expect(parseUtcOffset(text)).toBe(minutes)
        expect(periodBounds('day', now, parseUtcOffset(text))).toEqual(periodBounds('day', now, minutes))
      }),
    )
  })
})
