/**
 * What the request path learned about one request, for the ledger row written when it ends: who
 * it was (the identity step), what refused it (a decision), whether it became a charged call.
 * Kept by request object, so the steps that fill it need not pass it along.
 */
import type { Identification } from '../http/index.js'
import type { Decision } from '../limiter.js'

export interface RequestTrace {
  /** performance.now() when the request arrived. */
  startedAt: number
  /** performance.now() when the call went to the upstream (the end of the gateway's own work). */
  upstreamAt?: number
  identification?: Identification
  /** The refusing decision, when limits said no. */
  decision?: Decision
  /** The call was admitted and handed to accounting, which writes its row when it settles. */
  charged?: boolean
}

const traces = new WeakMap<object, RequestTrace>()

/** The request's trace, created on first use. */
export function traceOf(request: object): RequestTrace {
  let trace = traces.get(request)
  if (trace === undefined) {
    trace = { startedAt: performance.now() }
    traces.set(request, trace)
  }
  return trace
}

/** The trace if the request has one. */
export function peekTrace(request: object): RequestTrace | undefined {
  return traces.get(request)
}
