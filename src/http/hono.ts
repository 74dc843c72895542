/**
 * sluice as Hono middleware:
 *
 * ```ts
 * app.use(sluice())                          // or sluice({ store, tiers, keys, authenticate, … })
 * app.get('/', (c) => c.json({ level: c.get('sluice')?.level }))
 * ```
 *
 * The client address comes from the runtime: @hono/node-server and Bun are recognised; elsewhere
 * pass `remoteAddress: (c) => …` (for instance with the runtime's getConnInfo).
 */
import type { Context, MiddlewareHandler } from 'hono'
import { describe, SluiceInputError } from '../core/errors.js'
import { coreFrom, firstCheck, type SluiceInput } from './adapter.js'
import { Sluice } from './core.js'
import type { CostSpec, SluiceOptions } from './options.js'
import { type RateLimitState, releaseState } from './state.js'

declare module 'hono' {
  interface ContextVariableMap {
    /** What sluice decided about this request (set by sluice/hono). */
    sluice: RateLimitState
  }
}

export interface HonoOptions extends SluiceOptions<Context> {
  /** The socket address of a request, for runtimes sluice does not recognise. */
  remoteAddress?: (c: Context) => string | undefined
}

export interface HonoLimit extends MiddlewareHandler {
  /** The same middleware with another cost, for one route: `app.post('/x', limit.withCost(5), h)`. */
  withCost(cost: CostSpec<Context>): HonoLimit
  readonly core: Sluice<Context>
}

interface NodeServerBindings {
  incoming?: { socket?: { remoteAddress?: string } }
  outgoing?: { once(event: 'close', listener: () => void): unknown }
}

interface BunServer {
  requestIP?(request: Request): { address: string } | null
}

/** The socket address under @hono/node-server (env.incoming) or Bun (env is the server). */
function runtimeAddress(c: Context): string | undefined {
  const env = c.env as (NodeServerBindings & BunServer) | undefined
  if (env === undefined || env === null) return undefined
  const node = env.incoming?.socket?.remoteAddress
  if (node !== undefined) return node
  if (typeof env.requestIP === 'function') return env.requestIP(c.req.raw)?.address ?? undefined
  return undefined
}

function setAll(c: Context, headers: Record<string, string>): void {
  let target = c.res.headers
  try {
    for (const name in headers) target.set(name, headers[name]!)
  } catch {
    // Immutable headers (a Response from fetch()): copy the response once, then set.
    c.res = new Response(c.res.body, c.res)
    target = c.res.headers
    for (const name in headers) target.set(name, headers[name]!)
  }
}

function make(
  core: Sluice<Context>,
  remoteAddress: (c: Context) => string | undefined,
  cost: CostSpec<Context> | undefined,
): HonoLimit {
  const middleware: MiddlewareHandler = async (c, next) => {
    // Mounted twice (globally and on a route): the first check counts, the second passes.
    if (!firstCheck(core, c.req.raw)) return next()
    const result = await core.checkNow(
      { method: c.req.method, url: c.req.url, headers: c.req.raw.headers, remoteAddress: remoteAddress(c) },
      c,
      cost,
    )
    const state = result.state
    c.set('sluice', state)
    if (!result.proceed) return c.json(result.body, result.status as 401, result.headers)
    if (state.holdsLease) {
      const outgoing = (c.env as NodeServerBindings | undefined)?.outgoing
      // Under node-server a streamed body ends after this middleware returns: release on close.
      if (outgoing !== undefined) outgoing.once('close', () => void releaseState(state))
    }
    try {
      await next()
    } finally {
      if (state.holdsLease && (c.env as NodeServerBindings | undefined)?.outgoing === undefined) {
        void releaseState(state)
      }
    }
    setAll(c, result.headers)
  }
  const limit = middleware as HonoLimit
  limit.withCost = (cc: CostSpec<Context>) => make(core, remoteAddress, core.routeCost(cc, 'withCost(cost)'))
  Object.defineProperty(limit, 'core', { value: core, enumerable: true })
  return limit
}

/** Makes the middleware. With no options: memory store, default tiers, identity by IP. */
export function sluice(options?: HonoOptions | Sluice<Context>): HonoLimit {
  const remote = options instanceof Sluice ? undefined : options?.remoteAddress
  if (remote !== undefined && typeof remote !== 'function') {
    throw new SluiceInputError(`remoteAddress must be a function (c) => address, got ${describe(remote)}`)
  }
  return make(
    coreFrom(options as SluiceInput<Context> | undefined, ['remoteAddress']),
    remote ?? runtimeAddress,
    undefined,
  )
}

export default sluice
