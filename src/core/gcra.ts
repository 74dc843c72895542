import { EPSILON_MS, type Step, type StepFigures } from './step.js'

/**
 * Token bucket in GCRA form. The state is one number, the theoretical arrival time (TAT): the
 * instant at which the bucket would be full again. A bucket of capacity C refilled at R per second
 * has emission interval T = 1000 / R ms and tolerance tau = C * T.
 */
export interface GcraParams {
  capacity: number
  /** Milliseconds to refill one unit (1000 / refillPerSecond). */
  intervalMs: number
}

function step(tat: number, now: number, p: GcraParams, allowed: boolean, retryAfterMs: number): Step<number> {
  const ahead = tat - now
  return {
    state: tat,
    allowed,
    remaining: p.capacity - ahead / p.intervalMs,
    resetMs: Math.max(ahead, 0),
    retryAfterMs,
  }
}

/** What charging `cost` now would do; denied steps keep the old state. */
export function gcraCheck(tat: number | undefined, now: number, cost: number, p: GcraParams): Step<number> {
  const base = tat === undefined || tat < now ? now : tat
  const tolerance = p.capacity * p.intervalMs
  const next = base + cost * p.intervalMs
  const ahead = next - now
  if (ahead <= tolerance + EPSILON_MS) return step(next, now, p, true, 0)
  const retry = cost * p.intervalMs > tolerance + EPSILON_MS ? Number.POSITIVE_INFINITY : ahead - tolerance
  return step(base, now, p, false, retry)
}

/**
 * gcraCheck on the packed number itself (`a[at]`, 0 for full): an admitted charge writes the TAT
 * it leaves in its place (0 when the bucket is full again: resetMs 0) and the number it replaced
 * to `saved[at]`; the step's figures go to `out`, no Step made. The same arithmetic, so the same
 * answers (test/memory-in-place.test.ts holds them to gcraCheck's through the store).
 */
export function gcraCheckPacked(
  a: number[],
  at: number,
  now: number,
  cost: number,
  p: GcraParams,
  saved: number[],
  out: StepFigures,
): boolean {
  const tat = a[at]!
  // `now - 0` is `now` to the last bit: written so, both sides are doubles and V8 need not box
  // the TAT it picks.
  const base = tat === 0 || tat < now ? now - 0 : tat
  const tolerance = p.capacity * p.intervalMs
  const charged = base + cost * p.intervalMs
  const ahead = charged - now
  if (ahead <= tolerance + EPSILON_MS) {
    const resetMs = Math.max(ahead, 0)
    saved[at] = tat
    a[at] = resetMs > 0 ? charged : 0
    out.allowed = true
    out.remaining = p.capacity - ahead / p.intervalMs
    out.resetMs = resetMs
    out.retryAfterMs = 0
    return true
  }
  const kept = base - now
  out.allowed = false
  out.remaining = p.capacity - kept / p.intervalMs
  out.resetMs = Math.max(kept, 0)
  out.retryAfterMs =
    cost * p.intervalMs > tolerance + EPSILON_MS ? Number.POSITIVE_INFINITY : ahead - tolerance
  return false
}

/** Charges `cost` whatever the state: the bucket may go into debt, delaying later requests. */
export function gcraForce(tat: number | undefined, now: number, cost: number, p: GcraParams): Step<number> {
  const base = tat === undefined || tat < now ? now : tat
  return step(base + cost * p.intervalMs, now, p, true, 0)
}

/** Gives `amount` back, never above full. */
export function gcraRefund(
  tat: number | undefined,
  now: number,
  amount: number,
  p: GcraParams,
): Step<number> {
  const base = tat === undefined || tat < now ? now : tat
  const next = base - amount * p.intervalMs
  return step(Math.max(next, now), now, p, true, 0)
}
