import { describe, SluiceInputError } from './errors.js'

/** The calendar periods budgets reset on. Weeks start on Monday (ISO 8601). */
export type CalendarPeriod = 'day' | 'week' | 'month'
export const CALENDAR_PERIODS: readonly CalendarPeriod[] = ['day', 'week', 'month']

/** A half-open interval [start, end) of epoch milliseconds. */
export interface PeriodBounds {
  start: number
  end: number
}

const MINUTE = 60_000
const DAY = 86_400_000
/** The offsets in use on Earth run from UTC−12:00 to UTC+14:00. */
const MIN_OFFSET = -12 * 60
const MAX_OFFSET = 14 * 60

/**
 * The period containing `now`, in the calendar of a fixed UTC offset (`offsetMinutes`, default 0 =
 * UTC): [midnight, next midnight) for a day, [Monday 00:00, next Monday 00:00) for a week, [the
 * 1st 00:00, the next 1st 00:00) for a month. Fixed offsets only, on purpose: with a daylight-saving
 * zone a day lasts 23 or 25 hours and a wall-clock midnight can be skipped, so a period would no
 * longer be a pure function of the time and one number every instance and every SQL query agree on.
 */
export function periodBounds(period: CalendarPeriod, now: number, offsetMinutes = 0): PeriodBounds {
  if (typeof now !== 'number' || !Number.isFinite(now)) {
    throw new SluiceInputError(`now must be a finite time in ms, got ${describe(now)}`)
  }
  checkOffset(offsetMinutes)
  const shift = offsetMinutes * MINUTE
  const local = now + shift
  const dayStart = Math.floor(local / DAY) * DAY
  let start: number
  let end: number
  if (period === 'day') {
    start = dayStart
    end = dayStart + DAY
  } else if (period === 'week') {
    const mondayBased = (new Date(dayStart).getUTCDay() + 6) % 7
    start = dayStart - mondayBased * DAY
    end = start + 7 * DAY
  } else if (period === 'month') {
    const d = new Date(dayStart)
    start = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1)
    end = Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1)
  } else {
    throw new SluiceInputError(`period must be one of day, week, month, got ${describe(period)}`)
  }
  return { start: start - shift, end: end - shift }
}

function checkOffset(offsetMinutes: unknown): asserts offsetMinutes is number {
  if (
    typeof offsetMinutes !== 'number' ||
    !Number.isInteger(offsetMinutes) ||
    offsetMinutes < MIN_OFFSET ||
    offsetMinutes > MAX_OFFSET
  ) {
    throw new SluiceInputError(
      `a UTC offset must be whole minutes from -720 to +840, got ${describe(offsetMinutes)}`,
    )
  }
}

/**
 * A UTC offset written as `Z`, `UTC`, `+05:30`, `-08:00`, `+0530` or `+5`, in minutes east of UTC.
 * IANA zone names (`Europe/Paris`) are refused: see periodBounds for why.
 */
export function parseUtcOffset(text: unknown): number {
  if (typeof text === 'number') {
    checkOffset(text)
    return text
  }
  if (typeof text !== 'string') {
    throw new SluiceInputError(`a UTC offset must be like "+05:30" or "Z", got ${describe(text)}`)
  }
  const t = text.trim()
  if (t === 'Z' || t.toUpperCase() === 'UTC') return 0
  const m = /^(?:UTC)?([+-])(\d{1,2})(?::?(\d{2}))?$/i.exec(t)
  if (m === null || Number(m[3] ?? 0) >= 60) {
    throw new SluiceInputError(
      `a UTC offset must be like "+05:30", "-08:00" or "Z" (fixed offsets only, not zone names), got ${describe(text)}`,
    )
  }
  const minutes = (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3] ?? 0))
  checkOffset(minutes)
  return minutes
}
