/** What sluice decided about one request, as handlers see it, and what releases it when the response ends. */
import type { Costs, Decision, LimitStatus, Reservation } from '../limiter.js'
import type { Level } from './graduation.js'
import type { Identity } from './identity.js'
import type { ErrorBody } from './responses.js'

/** What sluice decided about one request, as exposed to handlers (`req.sluice` and the like). */
export interface RateLimitState {
  identity: Identity | undefined
  level: Level
  decision: Decision | undefined
  warning: string | undefined
  alerts: LimitStatus[]
  /** Would have been refused, let through by shadow mode. */
  shadowed: boolean
  allowListed: boolean
  /** Not limited because `skip` said so. */
  skipped: boolean
  /** The reservation behind the decision: settle it with the real costs once they are known. */
  reservation: Reservation | undefined
  /** The reservation holds a concurrency slot, released when the response ends (releaseState). */
  holdsLease: boolean
  /**
   * Charges the real costs instead of the estimate (e.g. `{ tokens: usage.total_tokens }`) and
   * releases a concurrency slot. Idempotent; adapters call it with no costs when the response ends.
   */
  settle(actual?: Costs): Promise<Decision | undefined>
}

/** What an adapter does with a request: let it through with `headers`, or answer `status`/`body`. */
export interface CheckResult {
  proceed: boolean
  /** 200 when the request proceeds. */
  status: number
  /**
   * Set these on the response in both cases (lower-case names). A new object on every call, the
   * caller's to keep: the Fastify adapter makes it the reply's own header object.
   */
  headers: Record<string, string>
  body: ErrorBody | undefined
  state: RateLimitState
}

export const NO_ALERTS: LimitStatus[] = []

export class RequestState implements RateLimitState {
  level: Level = 'ok'
  decision: Decision | undefined = undefined
  warning: string | undefined = undefined
  alerts: LimitStatus[] = NO_ALERTS
  shadowed = false
  allowListed = false
  skipped = false
  reservation: Reservation | undefined = undefined
  holdsLease = false

  constructor(public identity: Identity | undefined) {}

  settle(actual?: Costs): Promise<Decision | undefined> {
    if (this.reservation === undefined) return Promise.resolve(undefined)
    return this.reservation.settle(actual)
  }
}

/**
 * Releases what a request holds when its response is over: settles its reservation with the
 * estimate unless the handler settled it already. Adapters call this on response close.
 */
export function releaseState(state: RateLimitState): Promise<unknown> | undefined {
  if (!state.holdsLease) return undefined
  const reservation = state.reservation
  if (reservation === undefined || reservation.finished) return undefined
  return reservation.settle().catch(() => undefined)
}
