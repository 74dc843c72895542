/**
 * sluice as a Fastify plugin (hooks, route-level config):
 *
 * ```ts
 * await app.register(sluice)                 // or app.register(sluice, { store, tiers, keys, … })
 * app.post('/v1/images', { config: { sluice: { cost: 5 } } }, handler)   // this route costs 5 requests
 * app.get('/healthz', { config: { sluice: false } }, handler)             // not limited
 * app.get('/', (request) => ({ level: request.sluice?.level }))
 * ```
 *
 * Identity uses the socket address and sluice's own `trustProxy`, not Fastify's `trustProxy`.
 */
import type { FastifyInstance, FastifyPluginCallback, FastifyReply, FastifyRequest } from 'fastify'
import { describe, SluiceInputError } from '../core/errors.js'
import { coreFrom, type SluiceInput } from './adapter.js'
import type { Sluice } from './core.js'
import type { CostSpec } from './options.js'
import { remoteAddressOf } from './socket-address.js'
import { type CheckResult, type RateLimitState, releaseState } from './state.js'

/** Per route, in `config.sluice`: false to leave the route unlimited, or its own cost. */
export type SluiceRouteConfig = false | { cost?: CostSpec<FastifyRequest> }

declare module 'fastify' {
  interface FastifyRequest {
    /** What sluice decided about this request (null on routes it does not limit). */
    sluice: RateLimitState | null
  }
  interface FastifyInstance {
    /** The shared sluice core: events, identify(), unblock()… */
    sluice: Sluice<FastifyRequest>
  }
  interface FastifyContextConfig {
    sluice?: SluiceRouteConfig
  }
}

/** Options fastify's register() itself understands, passed along with ours. */
const REGISTER_OPTIONS = ['logLevel', 'logSerializers']

/**
 * Where Fastify keeps a reply's headers: an object under a symbol of its own, which
 * `reply.header(name, value)` fills as `headers[name.toLowerCase()] = value` (for any name but
 * `set-cookie`). The lower-casing is a builtin call of ~380 instructions a header, and the store a
 * megamorphic one: eight of them were most of what sluice added to a request. The names sluice
 * sets are lower-case already, so an admitted request's headers are written there directly (see
 * answer()); found on the first reply, by the symbol's description. Null when this Fastify keeps
 * them elsewhere: then reply.header() as before.
 */
const REPLY_HEADERS = 'fastify.reply.headers'
let replyHeadersKey: symbol | null | undefined

/** The reply's own header object, or undefined when it cannot be found (see REPLY_HEADERS). */
function replyHeaders(reply: FastifyReply): Record<string, string> | undefined {
  if (replyHeadersKey === undefined) {
    replyHeadersKey = Object.getOwnPropertySymbols(reply).find((s) => s.description === REPLY_HEADERS) ?? null
  }
  if (replyHeadersKey === null) return undefined
  const own = (reply as unknown as Record<symbol, unknown>)[replyHeadersKey]
  return typeof own === 'object' && own !== null && !Array.isArray(own)
    ? (own as Record<string, string>)
    : undefined
}

function isEmpty(object: object): boolean {
  for (const _ in object) return false
  return true
}

type Hook = (request: FastifyRequest, reply: FastifyReply, next: (error?: Error) => void) => void

/** Answers a checked request: its headers always, then the refusal or on to the route. */
function answer(
  request: FastifyRequest,
  reply: FastifyReply,
  next: (error?: Error) => void,
  result: CheckResult,
): void {
  const state = result.state
  request.sluice = state
  const headers = result.headers
  const own = replyHeaders(reply)
  if (own === undefined || !result.proceed) {
    // One reply.header() per header: reply.headers() reads our object's values by a key it does
    // not know (a megamorphic load each), where for-in reads them through the object's enum cache.
    for (const name in headers) reply.header(name, headers[name]!)
  } else if (isEmpty(own)) {
    // The reply has no header yet: ours (a new object per request) become its headers.
    ;(reply as unknown as Record<symbol, unknown>)[replyHeadersKey!] = headers
  } else {
    for (const name in headers) own[name] = headers[name]!
  }
  if (!result.proceed) {
    reply.code(result.status).send(result.body)
    return
  }
  if (state.holdsLease) reply.raw.once('close', () => void releaseState(state))
  next()
}

/**
 * The onRequest hook of one route, its cost fixed when the route was declared. A check that can
 * decide at once (a MemoryStore) is answered without a promise or a closure per request.
 */
function routeHook(core: Sluice<FastifyRequest>, cost: CostSpec<FastifyRequest> | undefined): Hook {
  return (request, reply, next) => {
    let result: CheckResult | Promise<CheckResult>
    try {
      result = core.checkNow(
        {
          method: request.method,
          url: request.url,
          headers: request.headers,
          remoteAddress: remoteAddressOf(request.raw.socket),
        },
        request,
        cost,
      )
    } catch (error) {
      next(error as Error)
      return
    }
    if (result instanceof Promise) result.then((r) => answer(request, reply, next, r), next)
    else answer(request, reply, next, result)
  }
}

function plugin(
  fastify: FastifyInstance,
  options: SluiceInput<FastifyRequest> | undefined,
  done: (error?: Error) => void,
): void {
  let core: Sluice<FastifyRequest>
  try {
    core = coreFrom(options, REGISTER_OPTIONS)
  } catch (error) {
    done(error as Error)
    return
  }
  fastify.decorate('sluice', core)
  fastify.decorateRequest('sluice', null)
  const defaultHook = routeHook(core, undefined)

  // Each route gets its own hook (after the route's and the app's own hooks of that stage, so
  // that an authenticate hook can read what they set), with its cost resolved once, here.
  fastify.addHook('onRoute', (route) => {
    const own = (route.config as { sluice?: SluiceRouteConfig } | undefined)?.sluice
    let hook = defaultHook
    if (own !== undefined) {
      const where = `route ${route.method} ${route.url} config.sluice`
      if (own === false) return
      if (typeof own !== 'object' || own === null) {
        throw new SluiceInputError(`${where} must be false or { cost }, got ${describe(own)}`)
      }
      for (const name of Object.keys(own)) {
        if (name !== 'cost') throw new SluiceInputError(`${where}.${name} is not a route option (cost)`)
      }
      if (own.cost !== undefined) hook = routeHook(core, core.routeCost(own.cost, `${where}.cost`))
    }
    // A cost computed from the request runs once the body is parsed (preValidation); otherwise
    // the check runs first thing (onRequest), before any body is read.
    const stage = typeof own === 'object' && typeof own.cost === 'function' ? 'preValidation' : 'onRequest'
    const hooks = route as unknown as Record<string, Hook | Hook[] | undefined>
    const existing = hooks[stage]
    hooks[stage] =
      existing === undefined ? [hook] : [...(Array.isArray(existing) ? existing : [existing]), hook]
  })
  done()
}

// Hooks apply to the whole app, not only to this plugin's own context (what fastify-plugin does).
const meta = plugin as unknown as Record<symbol, unknown>
meta[Symbol.for('skip-override')] = true
meta[Symbol.for('fastify.display-name')] = 'sluice'
meta[Symbol.for('plugin-meta')] = { name: 'sluice', fastify: '5.x' }

/** The plugin. With no options: memory store, default tiers, identity by IP. */
export const sluice = plugin as FastifyPluginCallback<SluiceInput<FastifyRequest>>

export default sluice
