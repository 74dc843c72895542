/**
 * A circuit breaker as a pure state machine (the clock is passed in). `up`: calls go to the store;
 * after `failureThreshold` failures in a row it turns `down`: calls are not attempted and a probe
 * (run by the owner) decides when the store is back.
 */
export type BreakerState = 'up' | 'down'

export interface Transition {
  to: BreakerState
  /** How long the previous state lasted, in ms. */
  afterMs: number
}

export class CircuitBreaker {
  state: BreakerState = 'up'
  /** When the current state began. */
  since: number
  /** Failures in a row while up. */
  failures = 0

  constructor(
    readonly failureThreshold: number,
    now: number,
  ) {
    this.since = now
  }

  get up(): boolean {
    return this.state === 'up'
  }

  /** A store call or probe succeeded; returns the transition when it brings the store back. */
  success(now: number): Transition | undefined {
    this.failures = 0
    if (this.state === 'up') return undefined
    return this.enter('up', now)
  }

  /** A store call failed; returns the transition when this failure trips the breaker. */
  failure(now: number): Transition | undefined {
    if (this.state === 'down') return undefined
    this.failures++
    if (this.failures < this.failureThreshold) return undefined
    return this.enter('down', now)
  }

  private enter(to: BreakerState, now: number): Transition {
    const afterMs = now - this.since
    this.state = to
    this.since = now
    this.failures = 0
    return { to, afterMs }
  }
}
