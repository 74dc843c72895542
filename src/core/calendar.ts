import { type FixedWindowState, windowCountCheckPacked } from './fixed-window.js'
import { type CalendarPeriod, periodBounds } from './period.js'
import { fits, type Step, type StepFigures } from './step.js'

/**
 * A budget per calendar period: at most `limit` per day, ISO week (from Monday) or month of a
 * fixed UTC offset, all of it back at the period's first instant (core/period.ts). The state is
 * the period's start and what was charged in it, as a fixed window's.
 */
export interface CalendarParams {
  limit: number
  period: CalendarPeriod
  /** Minutes east of UTC of the calendar's midnight (0: UTC). */
  offsetMinutes: number
}

function current(state: FixedWindowState | undefined, start: number): FixedWindowState {
  if (state === undefined || state.start !== start) return { start, count: 0 }
  return state
}

function step(
  s: FixedWindowState,
  now: number,
  end: number,
  p: CalendarParams,
  allowed: boolean,
  retry: number,
) {
  return {
    state: s,
    allowed,
    remaining: p.limit - s.count,
    resetMs: s.count > 0 ? end - now : 0,
    retryAfterMs: retry,
  } satisfies Step<FixedWindowState>
}

export function calendarCheck(
  state: FixedWindowState | undefined,
  now: number,
  cost: number,
  p: CalendarParams,
): Step<FixedWindowState> {
  const { start, end } = periodBounds(p.period, now, p.offsetMinutes)
  const s = current(state, start)
  if (fits(s.count, cost, p.limit)) return step({ start, count: s.count + cost }, now, end, p, true, 0)
  const retry = fits(0, cost, p.limit) ? end - now : Number.POSITIVE_INFINITY
  return step(s, now, end, p, false, retry)
}

/** calendarCheck on the packed numbers (a fixed window's two): see windowCountCheckPacked. */
export function calendarCheckPacked(
  a: number[],
  at: number,
  now: number,
  cost: number,
  p: CalendarParams,
  saved: number[],
  out: StepFigures,
): boolean {
  const { start, end } = periodBounds(p.period, now, p.offsetMinutes)
  return windowCountCheckPacked(a, at, now, cost, p.limit, start, end, saved, out)
}

/** Charges `cost` whatever is left: the period's budget may go into debt until the next period. */
export function calendarForce(
  state: FixedWindowState | undefined,
  now: number,
  cost: number,
  p: CalendarParams,
): Step<FixedWindowState> {
  const { start, end } = periodBounds(p.period, now, p.offsetMinutes)
  const s = current(state, start)
  return step({ start, count: s.count + cost }, now, end, p, true, 0)
}

/** Refunds only into the period the charge was made in; a past period's charge is gone already. */
export function calendarRefund(
  state: FixedWindowState | undefined,
  now: number,
  amount: number,
  chargedAt: number,
  p: CalendarParams,
): Step<FixedWindowState> {
  const { start, end } = periodBounds(p.period, now, p.offsetMinutes)
  const s = current(state, start)
  if (chargedAt < start) return step(s, now, end, p, true, 0)
  return step({ start, count: Math.max(s.count - amount, 0) }, now, end, p, true, 0)
}
