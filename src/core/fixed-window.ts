import { fits, type Step } from './step.js'

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
