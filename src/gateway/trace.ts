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

/**
 * Where a request keeps its trace: a property of its own, not a WeakMap keyed by the request. V8's
 * minor GC treats a WeakMap's values as strong while their keys are young, so the traces of every
 * call since the last minor GC were copied out of the young generation and promoted, left for a
 * full GC (one call at a time: 50–76 KB promoted per minor GC with the WeakMaps, 10–30 KB without).
 */
const TRACE = Symbol('sluice.trace')
type Traced = { [TRACE]?: RequestTrace }

/** The request's trace, created on first use. */
export function traceOf(request: object): RequestTrace {
  const traced = request as Traced
  let trace = traced[TRACE]
  if (trace === undefined) {
    trace = { startedAt: performance.now() }
    traced[TRACE] = trace
  }
  return trace
}

/** The trace if the request has one. */
export function peekTrace(request: object): RequestTrace | undefined {
  return (request as Traced)[TRACE]
}
