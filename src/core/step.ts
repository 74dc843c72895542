/**
 * What one algorithm says about one limit at one instant. `state` is the state to store if the
 * charge goes ahead (the unchanged state when denied or peeked).
 */
export interface Step<S> {
  state: S
  allowed: boolean
  /** Units left after this step (may be negative while in debt). */
  remaining: number
  /** Milliseconds until the limit is full again; also the key's time to live. */
  resetMs: number
  /** 0 when allowed; otherwise milliseconds until the cost would fit; Infinity when it never can. */
  retryAfterMs: number
}

/**
 * A step's figures without its state: what an algorithm's in-place check (`checkPacked`) writes
 * into a result the store reuses, instead of making a Step.
 */
export interface StepFigures {
  allowed: boolean
  remaining: number
  resetMs: number
  retryAfterMs: number
}

/**
 * Slack for float rounding: one microsecond, the resolution of Redis TIME. A cost fits when it
 * would fit one microsecond later, so no algorithm admits more than its limit by rounding.
 */
export const EPSILON_MS = 0.001

/** Relative slack for sums of fractional units (e.g. 0.1 + 0.2 dollars). */
export function fits(used: number, cost: number, limit: number): boolean {
  return used + cost <= limit + limit * 1e-12
}
