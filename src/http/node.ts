/**
 * sluice for plain `node:http` handlers:
 *
 * ```ts
 * const limit = sluice()                      // or sluice({ store, tiers, keys, … })
 * createServer(async (req, res) => {
 *   const state = await limit(req, res)
 *   if (!state) return                        // answered: 429, 401 or 403
 *   res.end(`level: ${state.level}`)
 * })
 * ```
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { coreFrom, firstCheck, type SluiceInput } from './adapter.js'
import type { Sluice } from './core.js'
import type { CostSpec } from './options.js'
import type { RequestLike } from './request.js'
import { remoteAddressOf } from './socket-address.js'
import { type CheckResult, type RateLimitState, releaseState } from './state.js'

declare module 'node:http' {
  interface IncomingMessage {
    /** What sluice decided about this request (set by sluice/node). */
    sluice?: RateLimitState
  }
}

/**
 * Checks a request and sets the rate-limit headers on the response. Resolves to the request's
 * state when the handler should go on, or to null when sluice has answered it already.
 */
export interface NodeLimit {
  (req: IncomingMessage, res: ServerResponse): Promise<RateLimitState | null>
  /** The same check with another cost for this route, e.g. `limit.withCost({ requests: 5 })`. */
  withCost(cost: CostSpec<IncomingMessage>): NodeLimit
  readonly core: Sluice<IncomingMessage>
}

export function toRequestLike(req: IncomingMessage): RequestLike {
  return {
    method: req.method ?? 'GET',
    url: req.url ?? '/',
    headers: req.headers,
    remoteAddress: remoteAddressOf(req.socket),
  }
}

/** Writes headers and, when refused, the JSON error; returns whether the handler may go on. */
export function applyResult(result: CheckResult, res: ServerResponse): boolean {
  const headers = result.headers
  for (const name in headers) res.setHeader(name, headers[name]!)
  if (!result.proceed) {
    const body = JSON.stringify(result.body)
    res.statusCode = result.status
    res.setHeader('content-type', 'application/json; charset=utf-8')
    res.setHeader('content-length', Buffer.byteLength(body))
    res.end(body)
    return false
  }
  const state = result.state
  if (state.holdsLease) res.once('close', () => void releaseState(state))
  return true
}

function make(core: Sluice<IncomingMessage>, cost: CostSpec<IncomingMessage> | undefined): NodeLimit {
  const limit = (async (req: IncomingMessage, res: ServerResponse) => {
    if (!firstCheck(core, req)) return req.sluice ?? null
    const result = await core.checkNow(toRequestLike(req), req, cost)
    req.sluice = result.state
    return applyResult(result, res) ? result.state : null
  }) as NodeLimit
  limit.withCost = (c: CostSpec<IncomingMessage>) => make(core, core.routeCost(c, 'withCost(cost)'))
  Object.defineProperty(limit, 'core', { value: core, enumerable: true })
  return limit
}

/** Makes the node:http check. With no options: memory store, default tiers, identity by IP. */
export function sluice(options?: SluiceInput<IncomingMessage>): NodeLimit {
  return make(coreFrom(options), undefined)
}

export default sluice
