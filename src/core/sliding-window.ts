import type { WindowParams } from './fixed-window.js'
import { EPSILON_MS, fits, type Step, type StepFigures } from './step.js'

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

// The arithmetic on the three numbers themselves, shared by the Step functions and the in-place
// check (slidingWindowCheckPacked), so that both give the same answers to the last bit.

function estimateOf(start: number, curr: number, prev: number, now: number, p: WindowParams): number {
  if (prev === 0) return curr
  return (prev * (start + p.windowMs - now)) / p.windowMs + curr
}

function resetOf(start: number, curr: number, prev: number, now: number, p: WindowParams): number {
  if (curr > 0) return start + 2 * p.windowMs - now
  if (prev > 0) return start + p.windowMs - now
  return 0
}

/** Milliseconds until `cost` fits, for a state that denies it now. */
function waitOf(
  start: number,
  curr: number,
  prev: number,
  now: number,
  cost: number,
  p: WindowParams,
): number {
  if (!fits(0, cost, p.limit)) return Number.POSITIVE_INFINITY
  const end = start + p.windowMs
  if (fits(curr, cost, p.limit)) {
    // The previous window's weight must fall to (limit - curr - cost) within this window.
    const at = end - (p.windowMs * (p.limit - curr - cost)) / prev
    // Never 0 for a denial: rounding can put `at` a hair before now.
    return Math.max(at - now, EPSILON_MS)
  }
  // Only after this window closes: curr becomes the previous count and decays.
  const at = end + p.windowMs - (p.windowMs * (p.limit - cost)) / curr
  return at - now
}

function estimate(s: SlidingWindowState, now: number, p: WindowParams): number {
  return estimateOf(s.start, s.curr, s.prev, now, p)
}

function step(s: SlidingWindowState, now: number, p: WindowParams, allowed: boolean, retry: number) {
  return {
    state: s,
    allowed,
    remaining: p.limit - estimate(s, now, p),
    resetMs: resetOf(s.start, s.curr, s.prev, now, p),
    retryAfterMs: retry,
  } satisfies Step<SlidingWindowState>
}

function waitFor(s: SlidingWindowState, now: number, cost: number, p: WindowParams): number {
  return waitOf(s.start, s.curr, s.prev, now, cost, p)
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

/**
 * slidingWindowCheck on the packed numbers (`a[at]` start, `a[at + 1]` curr, `a[at + 2]` prev;
 * zeros for none): an admitted charge writes the numbers it leaves in their place (zeros when the
 * limit is full again: resetMs 0) and the numbers it replaced to `saved`; the figures go to `out`,
 * no state object or Step made.
 */
export function slidingWindowCheckPacked(
  a: number[],
  at: number,
  now: number,
  cost: number,
  p: WindowParams,
  saved: number[],
  out: StepFigures,
): boolean {
  const start = Math.floor(now / p.windowMs) * p.windowMs
  // As current(): this window's counts, or the last window's count as the previous one, or none
  // (zeros for none read the same way).
  const was = a[at]!
  const wasCurr = a[at + 1]!
  const wasPrev = a[at + 2]!
  let curr = 0
  let prev = 0
  if (was === start) {
    curr = wasCurr
    prev = wasPrev
  } else if (was === start - p.windowMs) prev = wasCurr
  if (fits(estimateOf(start, curr, prev, now, p), cost, p.limit)) {
    const charged = curr + cost
    const resetMs = resetOf(start, charged, prev, now, p)
    saved[at] = was
    saved[at + 1] = wasCurr
    saved[at + 2] = wasPrev
    if (resetMs > 0) {
      a[at] = start
      a[at + 1] = charged
      a[at + 2] = prev
    } else a[at] = a[at + 1] = a[at + 2] = 0
    out.allowed = true
    out.remaining = p.limit - estimateOf(start, charged, prev, now, p)
    out.resetMs = resetMs
    out.retryAfterMs = 0
    return true
  }
  out.allowed = false
  out.remaining = p.limit - estimateOf(start, curr, prev, now, p)
  out.resetMs = resetOf(start, curr, prev, now, p)
  out.retryAfterMs = waitOf(start, curr, prev, now, cost, p)
  return false
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
