import type { WindowParams } from './fixed-window.js'
import { EPSILON_MS, fits, type Step } from './step.js'

/**
 * Sliding window, two-window weighted counter: the previous window's count weighted by how much
 * of it still overlaps the sliding window, plus the current count. O(1) memory; exact while the
 * previous window is empty, an approximation otherwise.
 */
export interface SlidingWindowState {
  start: number
  curr: number
  prev: number
}

function current(state: SlidingWindowState | undefined, now: number, p: WindowParams): SlidingWindowState {
  const start = Math.floor(now / p.windowMs) * p.windowMs
  if (state === undefined) return { start, curr: 0, prev: 0 }
  if (state.start === start) return state
  if (state.start === start - p.windowMs) return { start, curr: 0, prev: state.curr }
  return { start, curr: 0, prev: 0 }
}

function estimate(s: SlidingWindowState, now: number, p: WindowParams): number {
  if (s.prev === 0) return s.curr
  return (s.prev * (s.start + p.windowMs - now)) / p.windowMs + s.curr
}

function step(s: SlidingWindowState, now: number, p: WindowParams, allowed: boolean, retry: number) {
  let resetMs = 0
  if (s.curr > 0) resetMs = s.start + 2 * p.windowMs - now
  else if (s.prev > 0) resetMs = s.start + p.windowMs - now
  return {
    state: s,
    allowed,
    remaining: p.limit - estimate(s, now, p),
    resetMs,
    retryAfterMs: retry,
  } satisfies Step<SlidingWindowState>
}

/** Milliseconds until `cost` fits, for a state that denies it now. */
function waitFor(s: SlidingWindowState, now: number, cost: number, p: WindowParams): number {
  if (!fits(0, cost, p.limit)) return Number.POSITIVE_INFINITY
  const end = s.start + p.windowMs
  if (fits(s.curr, cost, p.limit)) {
    // The previous window's weight must fall to (limit - curr - cost) within this window.
    const at = end - (p.windowMs * (p.limit - s.curr - cost)) / s.prev
    // Never 0 for a denial: rounding can put `at` a hair before now.
    return Math.max(at - now, EPSILON_MS)
  }
  // Only after this window closes: curr becomes the previous count and decays.
  const at = end + p.windowMs - (p.windowMs * (p.limit - cost)) / s.curr
  return at - now
}

export function slidingWindowCheck(
  state: SlidingWindowState | undefined,
  now: number,
  cost: number,
  p: WindowParams,
): Step<SlidingWindowState> {
  const s = current(state, now, p)
  if (fits(estimate(s, now, p), cost, p.limit)) {
    return step({ start: s.start, curr: s.curr + cost, prev: s.prev }, now, p, true, 0)
  }
  return step(s, now, p, false, waitFor(s, now, cost, p))
}

export function slidingWindowForce(
  state: SlidingWindowState | undefined,
  now: number,
  cost: number,
  p: WindowParams,
): Step<SlidingWindowState> {
  const s = current(state, now, p)
  return step({ start: s.start, curr: s.curr + cost, prev: s.prev }, now, p, true, 0)
}

/** Refunds into the window the charge was made in (current or previous); older charges are gone. */
export function slidingWindowRefund(
  state: SlidingWindowState | undefined,
  now: number,
  amount: number,
  chargedAt: number,
  p: WindowParams,
): Step<SlidingWindowState> {
  const s = current(state, now, p)
  if (chargedAt >= s.start) {
    const curr = s.curr - amount
    return step({ start: s.start, curr: Math.max(curr, 0), prev: s.prev }, now, p, true, 0)
  }
  if (chargedAt >= s.start - p.windowMs) {
    const prev = s.prev - amount
    return step({ start: s.start, curr: s.curr, prev: Math.max(prev, 0) }, now, p, true, 0)
  }
  return step(s, now, p, true, 0)
}
