/**
 * The middleware's whole pipeline for one request: skip → identify (identity.ts) → refusals and
 * the allow list → price it (`cost`) → admit (admit.ts). What every framework adapter calls.
 */
import type { Costs } from '../limiter.js'
import type { Priority } from '../waiting.js'
import type { Admission, Admitter } from './admit.js'
import type { DetectionRefusal, Detectors } from './detect.js'
import type { Identification, Identifier, Identity } from './identity.js'
import { type CostSpec, toCosts } from './options.js'
import { PRIORITY_HEADER, readPriority } from './priority.js'
import { headerOf, type RequestLike } from './request.js'
import { type CheckResult, RequestState } from './state.js'

export interface CheckerOptions<Req> {
  identifier: Identifier<Req>
  admitter: Admitter
  /** The `cost` option, and the same checked once when it is not a function. */
  cost: CostSpec<Req>
  staticCosts: Costs | undefined
  skip: ((req: Req) => boolean) | undefined
  detectors?: Detectors<Req> | undefined
}

export class Checker<Req> {
  constructor(private readonly o: CheckerOptions<Req>) {}

  /** Sluice.checkNow(): at once when every step can, else a promise; may throw. */
  check(req: RequestLike, native?: Req, cost?: CostSpec<Req>): CheckResult | Promise<CheckResult> {
    const hookArg = (native ?? req) as Req
    if (this.o.skip?.(hookArg)) {
      const state = new RequestState(undefined)
      state.skipped = true
      return { proceed: true, status: 200, headers: {}, body: undefined, state }
    }
    const id = this.o.identifier.identify(req, hookArg)
    if (id instanceof Promise) {
      return id.then(
        (i) => this.limit(i, req, hookArg, cost),
        (error: unknown) => this.o.admitter.unavailable(error, undefined),
      )
    }
    return this.limit(id, req, hookArg, cost)
  }

  /** Answers a refusal or an allow-listed identity; admits the rest at their costs. */
  private limit(
    id: Identification,
    req: RequestLike,
    hookArg: Req,
    cost: CostSpec<Req> | undefined,
  ): CheckResult | Promise<CheckResult> {
    const identity = id.identity
    if (id.refusal !== undefined) {
      const state = new RequestState(identity)
      state.level = id.refusal.status === 403 ? 'deny' : 'throttle'
      const { status, headers, body } = id.refusal
      return { proceed: false, status, headers, body, state }
    }
    if (id.allowListed) {
      const state = new RequestState(identity)
      state.allowListed = true
      return { proceed: true, status: 200, headers: {}, body: undefined, state }
    }
    const admitter = this.o.admitter
    let options: { priority: Priority } | undefined
    // The header is read only for a tier that honours it: no lookup on every other request.
    if (admitter.allowsPriority(identity!)) {
      const read = readPriority(headerOf(req.headers, PRIORITY_HEADER), true)
      if (read.error !== undefined) return badPriority(identity!, read.error)
      if (read.priority !== undefined) options = { priority: read.priority }
    }
    const costs =
      cost === undefined
        ? (this.o.staticCosts ?? costsFor(this.o.cost, hookArg))
        : typeof cost === 'function'
          ? costsFor(cost, hookArg)
          : toCosts(cost, 'cost')
    const detectors = this.o.detectors
    if (detectors === undefined) return admitter.admit(identity!, costs, options)
    return detectors.check(identity!, detectors.promptOf(hookArg)).then(async (refusal) => {
      if (refusal !== undefined) return refused(identity!, refusal)
      const admission: Admission = await admitter.admit(identity!, costs, options)
      if (admission.proceed) {
        const c = await costs
        detectors.record(identity!, { tokens: c.tokens ?? 0, usd: c.usd ?? 0 }, admission.state.decision)
      }
      return admission
    })
  }
}

/** The 400 for a bad priority header from a tier that allows one (docs/queueing.md). */
function badPriority(identity: Identity, message: string): CheckResult {
  const body = { error: { message, type: 'invalid_request_error', param: null, code: 'invalid_priority' } }
  const headers = { 'content-type': 'application/json' }
  return { proceed: false, status: 400, headers, body, state: new RequestState(identity) }
}

/** The answer to a request a detector refuses (docs/abuse.md). */
export function refused(identity: Identity, refusal: DetectionRefusal): CheckResult {
  const state = new RequestState(identity)
  state.level = refusal.status === 403 ? 'block' : 'throttle'
  return { proceed: false, status: refusal.status, headers: refusal.headers, body: refusal.body, state }
}

function costsFor<Req>(cost: CostSpec<Req>, req: Req): Costs | Promise<Costs> {
  const value = typeof cost === 'function' ? cost(req) : cost
  if (value instanceof Promise) return value.then((v) => toCosts(v, 'cost(req)'))
  return toCosts(value, 'cost(req)')
}
