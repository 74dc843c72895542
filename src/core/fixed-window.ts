import { fits, type Step, type StepFigures } from './step.js'

/** Fixed window aligned to the epoch: a count per window of `windowMs`. */
export interface WindowParams {
  limit: number
  windowMs: number
}

export interface FixedWindowState {
  /** Start of the window the count belongs to (ms). */
  start: number
  count: number
}

function current(state: FixedWindowState | undefined, now: number, p: WindowParams): FixedWindowState {
  const start = Math.floor(now / p.windowMs) * p.windowMs
  if (state === undefined || state.start !== start) return { start, count: 0 }
  return state
}

function step(s: FixedWindowState, now: number, p: WindowParams, allowed: boolean, retry: number) {
  const left = s.start + p.windowMs - now
  return {
    state: s,
    allowed,
    remaining: p.limit - s.count,
    resetMs: s.count > 0 ? left : 0,
    retryAfterMs: retry,
  } satisfies Step<FixedWindowState>
}

export function fixedWindowCheck(
  state: FixedWindowState | undefined,
  now: number,
  cost: number,
  p: WindowParams,
): Step<FixedWindowState> {
  const s = current(state, now, p)
  if (fits(s.count, cost, p.limit)) return step({ start: s.start, count: s.count + cost }, now, p, true, 0)
  const retry = fits(0, cost, p.limit) ? s.start + p.windowMs - now : Number.POSITIVE_INFINITY
  return step(s, now, p, false, retry)
}

/**
 * fixedWindowCheck on the packed numbers (`a[at]` the window's start, `a[at + 1]` its count; zeros
 * for none): an admitted charge writes the numbers it leaves in their place (zeros when the limit
 * is full again: resetMs 0) and the numbers it replaced to `saved`; the figures go to `out`, no
 * Step made. Shared with the calendar (its period's `start` and `end` given).
 */
export function windowCountCheckPacked(
  a: number[],
  at: number,
  now: number,
  cost: number,
  limit: number,
  start: number,
  end: number,
  saved: number[],
  out: StepFigures,
): boolean {
  // A count of another window is gone (both zero, none, reads as 0 as well).
  const was = a[at]!
  const count = was === start ? a[at + 1]! : 0
  if (fits(count, cost, limit)) {
    const charged = count + cost
    const resetMs = charged > 0 ? end - now : 0
    saved[at] = was
    saved[at + 1] = a[at + 1]!
    if (resetMs > 0) {
      a[at] = start
      a[at + 1] = charged
    } else a[at] = a[at + 1] = 0
    out.allowed = true
    out.remaining = limit - charged
    out.resetMs = resetMs
    out.retryAfterMs = 0
    return true
  }
  out.allowed = false
  out.remaining = limit - count
  out.resetMs = count > 0 ? end - now : 0
  out.retryAfterMs = fits(0, cost, limit) ? end - now : Number.POSITIVE_INFINITY
  return false
}

export function fixedWindowCheckPacked(
  a: number[],
  at: number,
  now: number,
  cost: number,
  p: WindowParams,
  saved: number[],
  out: StepFigures,
): boolean {
  const start = Math.floor(now / p.windowMs) * p.windowMs
  return windowCountCheckPacked(a, at, now, cost, p.limit, start, start + p.windowMs, saved, out)
}

export function fixedWindowForce(
  state: FixedWindowState | undefined,
  now: number,
  cost: number,
  p: WindowParams,
): Step<FixedWindowState> {
  const s = current(state, now, p)
  return step({ start: s.start, count: s.count + cost }, now, p, true, 0)
}

/** Refunds only into the window the charge was made in; a charge from a past window is gone already. */
export function fixedWindowRefund(
  state: FixedWindowState | undefined,
  now: number,
  amount: number,
  chargedAt: number,
  p: WindowParams,
): Step<FixedWindowState> {
  const s = current(state, now, p)
  if (chargedAt < s.start) return step(s, now, p, true, 0)
  const count = s.count - amount
  return step({ start: s.start, count: Math.max(count, 0) }, now, p, true, 0)
}
