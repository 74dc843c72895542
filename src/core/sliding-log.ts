import type { WindowParams } from './fixed-window.js'
import { fits, type Step } from './step.js'

/**
 * Exact sliding window: a log of every charge (time, id, cost) inside the window. Memory grows
 * with the number of charges per window; use it where exactness matters more than memory.
 */
export interface LogEntry {
  at: number
  id: string
  cost: number
}

/** Entries oldest first; entries at or before `now - windowMs` no longer count. */
export type SlidingLogState = LogEntry[]

function live(state: SlidingLogState | undefined, now: number, p: WindowParams): SlidingLogState {
  if (state === undefined) return []
  const cutoff = now - p.windowMs
  let first = 0
  while (first < state.length && state[first]!.at <= cutoff) first++
  return first === 0 ? state : state.slice(first)
}

function sum(entries: SlidingLogState): number {
  let used = 0
  for (const e of entries) used += e.cost
  return used
}

function step(s: SlidingLogState, now: number, p: WindowParams, allowed: boolean, retry: number) {
  const newest = s[s.length - 1]
  return {
    state: s,
    allowed,
    remaining: p.limit - sum(s),
    resetMs: newest === undefined ? 0 : newest.at + p.windowMs - now,
    retryAfterMs: retry,
  } satisfies Step<SlidingLogState>
}

function waitFor(s: SlidingLogState, now: number, cost: number, p: WindowParams): number {
  if (!fits(0, cost, p.limit)) return Number.POSITIVE_INFINITY
  let used = sum(s)
  for (const e of s) {
    used -= e.cost
    if (fits(used, cost, p.limit)) return e.at + p.windowMs - now
  }
  return 0
}

export function slidingLogCheck(
  state: SlidingLogState | undefined,
  now: number,
  cost: number,
  id: string,
  p: WindowParams,
): Step<SlidingLogState> {
  const s = live(state, now, p)
  if (fits(sum(s), cost, p.limit)) {
    return step(cost > 0 ? [...s, { at: now, id, cost }] : s, now, p, true, 0)
  }
  return step(s, now, p, false, waitFor(s, now, cost, p))
}

export function slidingLogForce(
  state: SlidingLogState | undefined,
  now: number,
  cost: number,
  id: string,
  p: WindowParams,
): Step<SlidingLogState> {
  const s = live(state, now, p)
  return step(cost > 0 ? [...s, { at: now, id, cost }] : s, now, p, true, 0)
}

/** Takes `amount` off the entry the reservation `id` wrote; nothing when it has left the window. */
export function slidingLogRefund(
  state: SlidingLogState | undefined,
  now: number,
  amount: number,
  id: string,
  p: WindowParams,
): Step<SlidingLogState> {
  const s = live(state, now, p)
  const i = s.findIndex((e) => e.id === id)
  if (i < 0) return step(s, now, p, true, 0)
  const entry = s[i]!
  const left = entry.cost - amount
  const next = s.slice()
  if (left > 0) next[i] = { at: entry.at, id, cost: left }
  else next.splice(i, 1)
  return step(next, now, p, true, 0)
}
