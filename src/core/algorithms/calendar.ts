import type { z } from 'zod'
import { calendarCheck, calendarCheckPacked, calendarForce, calendarRefund } from '../calendar.js'
import { describe, requirePositiveFinite, SluiceInputError } from '../errors.js'
import type { FixedWindowState } from '../fixed-window.js'
import { CALENDAR_PERIODS, type CalendarPeriod, parseUtcOffset } from '../period.js'
import { WINDOW_COUNT } from './fixed-window.js'
import { optionsOf, unitOf } from './options.js'
import type { Algorithm, ConfigKit, Unit } from './types.js'

export interface CalendarLimit {
  kind: 'calendar'
  unit: Unit
  limit: number
  period: CalendarPeriod
  /** Minutes east of UTC of the calendar's midnight (0: UTC). */
  offsetMinutes: number
}

const DAY_MS = 86_400_000
/** The length of each period as windowSeconds reports it (a month as 30 days). */
const NOMINAL_MS: Record<CalendarPeriod, number> = { day: DAY_MS, week: 7 * DAY_MS, month: 30 * DAY_MS }
/** Its shortest length: an alert is remembered no longer, so it never hides the next period's. */
const SHORTEST_MS: Record<CalendarPeriod, number> = { day: DAY_MS, week: 7 * DAY_MS, month: 28 * DAY_MS }
const PERIOD_CODES: Record<CalendarPeriod, number> = { day: 1, week: 2, month: 3 }

/**
 * A budget per calendar period: at most `limit` per day, ISO week (Monday to Sunday) or month,
 * all of it back at the start of the next one. Periods follow UTC, or the fixed offset `utcOffset`
 * ("+05:30", "-08:00", or minutes east of UTC). Zone names such as "Europe/Paris" are refused: with
 * daylight saving a day may last 23 or 25 hours, and every instance, store and SQL query must
 * agree on one period from the time alone (core/period.ts).
 */
export function calendar(options: {
  limit: number
  period: CalendarPeriod
  utcOffset?: string | number
  unit?: Unit
}): CalendarLimit {
  const o = optionsOf(options, 'calendar()')
  const period = o.period
  if (typeof period !== 'string' || !(CALENDAR_PERIODS as readonly string[]).includes(period)) {
    throw new SluiceInputError(
      `calendar().period must be one of ${CALENDAR_PERIODS.join(', ')}, got ${describe(period)}`,
    )
  }
  let offsetMinutes = 0
  if (o.utcOffset !== undefined) {
    try {
      offsetMinutes = parseUtcOffset(o.utcOffset)
    } catch (error) {
      if (error instanceof SluiceInputError)
        throw new SluiceInputError(`calendar().utcOffset: ${error.message}`)
      throw error
    }
  }
  return {
    kind: 'calendar',
    unit: unitOf(o.unit, 'usd', 'calendar()'),
    limit: requirePositiveFinite(o.limit, 'calendar().limit'),
    period: period as CalendarPeriod,
    offsetMinutes,
  }
}

function isUtcOffset(value: unknown): boolean {
  try {
    parseUtcOffset(value)
    return true
  } catch {
    return false
  }
}

const configSchema = ({ z, unit, positive }: ConfigKit) =>
  z.strictObject({
    kind: z.literal('calendar'),
    unit,
    limit: positive,
    period: z.enum(CALENDAR_PERIODS as [CalendarPeriod, ...CalendarPeriod[]]),
    /** "+05:30", "-08:00", "Z"; UTC when left out. */
    utcOffset: z
      .union([z.string(), z.number()])
      .refine((v) => isUtcOffset(v), {
        message:
          'expected a fixed UTC offset such as "+05:30", "-08:00" or "Z" (zone names such as "Europe/Paris" are refused: docs/algorithms.md)',
      })
      .optional(),
  })

/** Kept as a fixed window's two numbers: the period's start and what was charged in it. */
export const calendarAlgorithm: Algorithm<
  CalendarLimit,
  FixedWindowState,
  z.output<ReturnType<typeof configSchema>>
> = {
  kind: 'calendar',
  normalize: (d) => {
    const o = optionsOf(d, 'calendar()')
    // A definition names its offset in minutes; options may give either.
    return calendar({ ...o, utcOffset: o.utcOffset ?? o.offsetMinutes } as never)
  },
  capacity: (d) => d.limit,
  windowSeconds: (d) => NOMINAL_MS[d.period] / 1000,
  alertMs: (d) => SHORTEST_MS[d.period],
  scale: (d, n) => ({ ...d, limit: d.limit / n }),
  refill: 'windowEnd',
  inFlight: false,
  needsOpId: false,
  check: (s, now, cost, d) => calendarCheck(s, now, cost, d),
  checkPacked: calendarCheckPacked,
  adjust: (s, now, delta, d, ctx) =>
    delta >= 0 ? calendarForce(s, now, delta, d) : calendarRefund(s, now, -delta, ctx.chargedAt, d),
  packed: WINDOW_COUNT,
  lua: {
    file: 'calendar.lua',
    params: (d) => [d.limit, PERIOD_CODES[d.period], d.offsetMinutes, SHORTEST_MS[d.period]],
  },
  config: {
    schema: configSchema,
    toLimit: (c) =>
      calendar({
        limit: c.limit,
        period: c.period,
        unit: c.unit ?? 'usd',
        ...(c.utcOffset === undefined ? {} : { utcOffset: c.utcOffset }),
      }),
  },
  sample: (n) => calendar({ limit: n, period: 'month', unit: 'requests' }),
}
