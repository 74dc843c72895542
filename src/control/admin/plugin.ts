import { readFileSync } from 'node:fs'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { QueuesReport } from '../../http/queue-report.js'
import type { DetectorStore } from '../../store/detectors/types.js'
import type { Control } from '../control.js'
import { ControlInputError } from '../errors.js'
import {
  type AdminAuthFailures,
  type AdminTokenOptions,
  bearerToken,
  expectedDigest,
  inProcessAuthFailures,
  tokenMatches,
} from './auth.js'
import { AdminHttpError, httpErrorOf, loggableError, notFound } from './errors.js'
import type { AdminEventFeed } from './events.js'
import type { LatencySnapshot } from './latency.js'
import { buildOpenApi } from './openapi.js'
import {
  ADMIN_PREFIX,
  type AdminRoute,
  type AdminSubjects,
  notImplemented,
  pathMatcher,
  type RouteDeps,
} from './route.js'
import { detectionRoutes } from './routes/detections.js'
import { eventRoutes } from './routes/events.js'
import { insightRoutes } from './routes/insights.js'
import { keyRoutes } from './routes/keys.js'
import { queueRoutes } from './routes/queues.js'
import { systemRoutes } from './routes/system.js'
import { teamRoutes } from './routes/teams.js'
import { usageRoutes } from './routes/usage.js'
import { userRoutes } from './routes/users.js'
import { type Actor, AdminService, type AdminServiceOptions } from './service.js'
import { type EventStreamOptions, EventStreams } from './sse.js'

export interface AdminApiOptions {
  /** The control plane (keys, teams, users, ledger, audit) the API manages. */
  control: Control
  /**
   * The admin token, or only its SHA-256 (`{ tokenHash }`, 64 hex digits). Absent (or both fields
   * absent): the admin API is off — every /admin/v1 route answers 404, nothing is ever open.
   */
  auth?: AdminTokenOptions
  /** The configured tier names (or a check): a key naming another tier is a 400 on `tier`. */
  tiers?: AdminServiceOptions['tiers']
  /** With a check as `tiers`: the names /status shows (e.g. a gateway's tiers after a reload). */
  tierNames?: () => readonly string[]
  /** The keys of sluice.yaml now: listed and shown read-only beside the database's (config-keys.ts). */
  configKeys?: AdminServiceOptions['configKeys']
  /**
   * Counts wrong or missing tokens per client address and locks the address out (429). Default:
   * in-process, 10 failures per 10 minutes (`{ limit, windowMs }` changes those). With several
   * gateway instances, give one shared by all (e.g. the gateway's failed-auth limiter on Redis).
   */
  failedAuth?: AdminAuthFailures | { limit?: number; windowMs?: number }
  /**
   * The client address failed attempts are counted by. Default: the socket's peer address (never a
   * header); the gateway passes its own, which honours its trusted proxies.
   */
  clientIp?: (request: FastifyRequest) => string
  /** The gateway's limiter, for /subjects (inspect, unblock). Absent: those routes answer 501. */
  subjects?: AdminSubjects
  /** The limiter store's state, for /status (e.g. the Redis breaker). Absent: `store: null`. */
  storeStatus?: () => Record<string, unknown> | Promise<Record<string, unknown>>
  /**
   * The events feed (alerts, blocks, budgets, store outages, webhook deliveries) that /events and
   * /events/stream serve; the gateway connects its sources to it (event-sources.ts). Absent: 501.
   */
  events?: AdminEventFeed
  /** The server-sent events streams: keep-alive interval, readers at once, how far one may lag. */
  eventStreams?: EventStreamOptions
  /** The fair queues' view (the HTTP core's `queues()`), for /queues. Absent: 501. */
  queues?: () => Promise<QueuesReport>
  /** The latency the gateway adds (a LatencyRecorder's `snapshot`), for /latency. Absent: 501. */
  latency?: () => LatencySnapshot | Promise<LatencySnapshot>
  /** The abuse detectors' store, for /detections (list, inspect, clear, allow). Absent: 501. */
  detections?: () => DetectorStore | undefined
  /** Reported by /status and openapi.json (default: this package's version). */
  version?: string
  /** Largest request body, in bytes (default 64 KiB; larger → 413). */
  bodyLimit?: number
}

const DEFAULT_BODY_LIMIT = 64 * 1024
/** `x-sluice-actor` names who acts, for the audit log; a plain name so it cannot forge structure. */
const ACTOR_NAME = /^[A-Za-z0-9._@+-]{1,64}$/

let packageVersion: string | undefined
function sluiceVersion(): string {
  if (packageVersion === undefined) {
    try {
      const url = new URL('../../../package.json', import.meta.url)
      packageVersion = (JSON.parse(readFileSync(url, 'utf8')) as { version?: string }).version ?? 'unknown'
    } catch {
      packageVersion = 'unknown'
    }
  }
  return packageVersion
}

/** The audit actor of a request: `admin-api:<x-sluice-actor>`, or `admin-api:admin` without one. */
export function actorOf(request: FastifyRequest): Actor {
  const name = request.headers['x-sluice-actor']
  if (name === undefined) return { actor: 'admin-api:admin' }
  if (typeof name !== 'string' || !ACTOR_NAME.test(name)) {
    throw new ControlInputError('x-sluice-actor', 'must be 1-64 letters, digits, ".", "_", "@", "+" or "-"')
  }
  return { actor: `admin-api:${name}` }
}

function send(reply: FastifyReply, answer: AdminHttpError): void {
  // Refused before its body was read (no token, API off, lockout): close the connection instead
  // of reading the rest of a body nobody will look at, and of waiting on a client that stopped
  // sending it (a keep-alive socket mid-body is never idle, and would hold up the server's close).
  if (!reply.request.raw.complete) reply.header('connection', 'close')
  reply.code(answer.status).headers(answer.headers).send(answer.body)
}

function lockedOut(retryAfterMs: number): AdminHttpError {
  const ms = Number.isFinite(retryAfterMs) ? Math.max(1, Math.ceil(retryAfterMs)) : 600_000
  return new AdminHttpError(
    429,
    'too many failed admin logins from this address: wait before trying again',
    'rate_limit_error',
    'too_many_auth_failures',
    null,
    { 'retry-after': String(Math.max(1, Math.ceil(ms / 1000))), 'retry-after-ms': String(ms) },
  )
}

function unauthorized(missing: boolean): AdminHttpError {
  return new AdminHttpError(
    401,
    missing
      ? 'the admin API needs the admin token: Authorization: Bearer <token>'
      : 'the admin token is wrong',
    'authentication_error',
    missing ? 'missing_admin_token' : 'invalid_admin_token',
    null,
    { 'www-authenticate': 'Bearer realm="sluice admin"' },
  )
}

/** Bodies are JSON whatever the Content-Type says (so `curl -d` works); an empty body is none. */
function parseJsonBody(
  _request: FastifyRequest,
  body: string | Buffer,
  done: (e: Error | null, v?: unknown) => void,
) {
  const text = typeof body === 'string' ? body : body.toString('utf8')
  if (text.trim() === '') return done(null, undefined)
  try {
    done(null, JSON.parse(text))
  } catch {
    done(new AdminHttpError(400, 'the body is not valid JSON', 'invalid_request_error', 'invalid_json'))
  }
}

/**
 * Checks the admin token before anything else is read (the body is parsed only after this hook).
 * A locked-out address is refused whatever it sends; a wrong or missing token counts against it.
 */
function authHook(expected: Buffer, failures: AdminAuthFailures, clientIp: (r: FastifyRequest) => string) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    reply.header('cache-control', 'no-store')
    const ip = clientIp(request)
    if (failures.isLockedOut) {
      const state = await failures.isLockedOut(ip)
      if (state.lockedOut) throw lockedOut(state.retryAfterMs)
    }
    const presented = bearerToken(request.headers.authorization)
    if (tokenMatches(presented, expected)) return
    const state = await failures.onAuthFailure(ip)
    if (state.lockedOut) throw lockedOut(state.retryAfterMs)
    throw unauthorized(presented === undefined)
  }
}

/** Unknown admin URL → 404; a known path with another method → 405 with `Allow`. */
function notFoundHandler(routes: readonly AdminRoute[]) {
  const matchers = routes.map((r) => ({ method: r.method, pattern: pathMatcher(r.path) }))
  return (request: FastifyRequest, reply: FastifyReply) => {
    const path = request.url.split('?')[0]!
    const methods = new Set(matchers.filter((m) => m.pattern.test(path)).map((m) => m.method))
    if (methods.size === 0)
      return send(reply, notFound(`no admin route ${request.method} ${path.slice(0, 200)}`, 'unknown_route'))
    if (methods.has('GET')) methods.add('HEAD' as never)
    send(
      reply,
      new AdminHttpError(
        405,
        `${request.method} is not allowed on ${path.slice(0, 200)}`,
        'invalid_request_error',
        'method_not_allowed',
        null,
        { allow: [...methods].join(', ') },
      ),
    )
  }
}

/** Every admin route, in the order the document lists them. */
export function adminRoutes(deps: RouteDeps): AdminRoute[] {
  return [
    ...keyRoutes(deps),
    ...teamRoutes(deps),
    ...userRoutes(deps),
    ...usageRoutes(deps),
    ...insightRoutes(deps),
    ...eventRoutes(deps),
    ...detectionRoutes(deps),
    ...queueRoutes(deps),
    ...systemRoutes(deps),
  ]
}

/**
 * The admin API (`/admin/v1/…`) as a Fastify plugin. Register it at the root of any Fastify app —
 * the gateway's, or one of its own (`startAdminServer`): `await app.register(adminApi, options)`.
 * It keeps its hooks, parsers and error handling to itself (an encapsulated context): the host
 * app's routes are untouched.
 */
export async function adminApi(fastify: FastifyInstance, options: AdminApiOptions): Promise<void> {
  if (fastify.prefix !== '') {
    throw new Error(
      `register adminApi at the root of the app, not under "${fastify.prefix}": its routes carry ${ADMIN_PREFIX} themselves`,
    )
  }
  const expected = expectedDigest(options.auth)
  const bodyLimit = options.bodyLimit ?? DEFAULT_BODY_LIMIT
  await fastify.register(
    async (scope) => {
      scope.removeAllContentTypeParsers()
      scope.addContentTypeParser('*', { parseAs: 'string', bodyLimit }, parseJsonBody)
      scope.setErrorHandler((error, request, reply) => {
        const { answer, internal } = httpErrorOf(error)
        if (internal) request.log.error({ err: loggableError(error) }, 'admin API request failed')
        send(reply, answer)
      })
      if (expected === undefined) {
        // Off: answer 404 before reading anything, on every URL below the prefix.
        const off = notFound('the admin API is off: no admin token is configured', 'admin_api_off')
        scope.addHook('onRequest', async () => {
          throw off
        })
        scope.setNotFoundHandler((_request, reply) => send(reply, off))
        return
      }
      const external = options.failedAuth !== undefined && 'onAuthFailure' in options.failedAuth
      const failures = external
        ? (options.failedAuth as AdminAuthFailures)
        : inProcessAuthFailures(options.failedAuth as { limit?: number; windowMs?: number } | undefined)
      if (!external) scope.addHook('onClose', async () => failures.close?.())
      const clientIp = options.clientIp ?? ((r: FastifyRequest) => r.socket.remoteAddress ?? 'unknown')
      scope.addHook('onRequest', authHook(expected, failures, clientIp))

      let document: Record<string, unknown> = {}
      const streams = options.events && new EventStreams(options.events, options.eventStreams)
      // Open streams never end by themselves: end them before the server waits for its connections.
      if (streams) scope.addHook('preClose', async () => streams.closeAll())
      const routes = adminRoutes({
        service: new AdminService({
          control: options.control,
          tiers: options.tiers,
          ...(options.configKeys !== undefined && { configKeys: options.configKeys }),
        }),
        subjects: options.subjects,
        storeStatus: options.storeStatus,
        version: options.version ?? sluiceVersion(),
        tiers: tierNamesOf(options),
        events: options.events && streams ? { feed: options.events, streams } : undefined,
        latency: options.latency,
        queues: options.queues,
        detections: detectionsOf(options),
        document: () => document,
      })
      document = buildOpenApi(routes, { version: options.version ?? sluiceVersion() })
      for (const route of routes) {
        scope.route({
          method: route.method,
          url: route.path,
          bodyLimit,
          handler: async (request, reply) => {
            const result = await route.handle({
              params: (request.params ?? {}) as Record<string, string>,
              query: request.query,
              body: request.body,
              actor: () => actorOf(request),
              request,
              reply,
            })
            // A stream took the reply over and answers by itself.
            if (route.produces === 'text/event-stream') return
            reply.code(route.status ?? 200)
            return result
          },
        })
      }
      scope.setNotFoundHandler(notFoundHandler(routes))
    },
    { prefix: ADMIN_PREFIX },
  )
}

function detectionsOf(options: AdminApiOptions): (() => DetectorStore) | undefined {
  const get = options.detections
  if (get === undefined) return undefined
  return () => {
    const store = get()
    if (store === undefined)
      throw notImplemented('detections', 'abuse detectors (`detectors` in sluice.yaml)')
    return store
  }
}

function tierNamesOf(options: AdminApiOptions): (() => readonly string[]) | null {
  if (options.tierNames !== undefined) return options.tierNames
  if (!Array.isArray(options.tiers)) return null
  const names = [...options.tiers]
  return () => names
}
