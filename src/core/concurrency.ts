import { fits, type Step } from './step.js'

/**
 * Calls in flight: a set of leases, each with an expiry so that a crashed holder cannot keep its
 * slot forever. The state maps lease id to expiry (ms).
 */
export interface ConcurrencyParams {
  limit: number
  leaseMs: number
}

export type ConcurrencyState = ReadonlyMap<string, number>

function live(state: ConcurrencyState | undefined, now: number): ConcurrencyState {
  if (state === undefined) return new Map()
  let stale = false
  for (const expiry of state.values()) if (expiry <= now) stale = true
  if (!stale) return state
  const kept = new Map<string, number>()
  for (const [id, expiry] of state) if (expiry > now) kept.set(id, expiry)
  return kept
}

function step(s: ConcurrencyState, now: number, p: ConcurrencyParams, allowed: boolean, retry: number) {
  let last = now
  for (const expiry of s.values()) if (expiry > last) last = expiry
  return {
    state: s,
    allowed,
    remaining: p.limit - s.size,
    resetMs: last - now,
    retryAfterMs: retry,
  } satisfies Step<ConcurrencyState>
}

/** Milliseconds until enough leases expire for `slots` more; an upper bound, releases come sooner. */
function waitFor(s: ConcurrencyState, now: number, slots: number, p: ConcurrencyParams): number {
  if (!fits(0, slots, p.limit)) return Number.POSITIVE_INFINITY
  const expiries = [...s.values()].sort((a, b) => a - b)
  const mustExpire = s.size + slots - p.limit
  return expiries[mustExpire - 1]! - now
}

/**
 * Checks for a free slot (`slots` is 1, or 0 to only read) and, when `leaseId` is given, takes it
 * as a lease until now + leaseMs. Without a lease id it only checks: a call that holds nothing.
 */
export function concurrencyCheck(
  state: ConcurrencyState | undefined,
  now: number,
  slots: number,
  leaseId: string | undefined,
  p: ConcurrencyParams,
): Step<ConcurrencyState> {
  const s = live(state, now)
  if (!fits(s.size, slots, p.limit)) return step(s, now, p, false, waitFor(s, now, slots, p))
  if (leaseId === undefined || slots === 0) return step(s, now, p, true, 0)
  const next = new Map(s)
  next.set(leaseId, now + p.leaseMs)
  return step(next, now, p, true, 0)
}

/** Releases a lease; releasing one that is gone is a no-op. */
export function concurrencyRelease(
  state: ConcurrencyState | undefined,
  now: number,
  leaseId: string,
  p: ConcurrencyParams,
): Step<ConcurrencyState> {
  const s = live(state, now)
  if (!s.has(leaseId)) return step(s, now, p, true, 0)
  const next = new Map(s)
  next.delete(leaseId)
  return step(next, now, p, true, 0)
}
