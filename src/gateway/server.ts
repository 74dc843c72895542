import Fastify, { type FastifyReply, type FastifyRequest, LogController } from 'fastify'
import type { Logger } from 'pino'
import type { Identification, Sluice } from '../http/index.js'
import type { Decision, Reservation } from '../limiter.js'
import type { SluiceMetrics } from '../metrics.js'
import { StoreUnavailableError } from '../store/errors.js'
import type { Accounting } from './accounting.js'
import {
  CHEAPEST_CALL,
  exceedsCapacity,
  knownDenied,
  OversizeStrikes,
  RefusedBeforeParsing,
  tokenCapacity,
} from './admission.js'
import type { GatewayConfig } from './config/schema.js'
import { lowerBound, sharedCounter } from './counting.js'
import { GatewayError } from './errors.js'
import type { InFlightCalls } from './in-flight.js'
import { bodyError, boundedJsonParser } from './json-body.js'
import type { ModelTable } from './models.js'
import { proxyCall } from './proxy.js'
import { requestLogger } from './request-logger.js'
import {
  type Estimate,
  ROUTES,
  requestOutputTokens,
  requestParts,
  type ValidRequest,
  validateRequest,
} from './requests.js'
import type { GatewayStore } from './store.js'
import { traceOf } from './trace.js'
import { UploadGuard } from './uploads.js'
import type { Upstream } from './upstream.js'
import type { RouteKind } from './usage.js'

export interface ServerDeps {
  config: GatewayConfig
  sluice: Sluice
  store: GatewayStore
  accounting: Accounting
  models: ModelTable
  upstreams: ReadonlyMap<string, Upstream>
  logger: Logger
  metrics: SluiceMetrics
  /** Calls being served (shutdown waits for them). */
  calls: InFlightCalls
  /** Set when shutdown begins: new calls get 503, /readyz says so. */
  lifecycle: { closing: boolean }
}

/** Header on answers whose limits could not be checked: how the tier's outage policy decided. */
export const FALLBACK_HEADER = 'x-sluice-fallback'

/** Bodies longer than this (in characters) are checked against known denials again before parsing. */
const RECHECK_BEFORE_PARSING = 64 * 1024

/** Routes that still answer while the gateway drains. */
const DRAINING_ROUTES = new Set(['/healthz', '/metrics', '/readyz'])

function withFallback(headers: Record<string, string>, decision: Decision): Record<string, string> {
  if (decision.fallback !== undefined) headers[FALLBACK_HEADER] = decision.fallback
  return headers
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function pathOf(url: string): string {
  const q = url.indexOf('?')
  return q === -1 ? url : url.slice(0, q)
}

/**
 * Answers sent before a body has fully arrived close the connection: otherwise Node would read
 * (and drop) the rest of an upload the client need no longer send.
 */
function closeIfUploading(request: FastifyRequest, headers: Record<string, string>): Record<string, string> {
  if (!request.raw.complete) headers.connection = 'close'
  return headers
}

/** The Fastify app of the gateway: OpenAI routes behind identity, limits and accounting. */
export function buildServer(deps: ServerDeps) {
  const { config, sluice, accounting, models, upstreams } = deps
  const identities = new WeakMap<FastifyRequest, Identification>()
  const counter = sharedCounter()
  const strikes = new OversizeStrikes()
  const uploads = new UploadGuard({
    timeoutMs: config.uploads.timeout,
    idleTimeoutMs: config.uploads.idleTimeout,
    minRate: config.uploads.minRate,
    perIp: config.uploads.perIp,
  })
  const app = Fastify({
    loggerInstance: deps.logger,
    logController: new LogController({ disableRequestLogging: true }),
    childLoggerFactory: requestLogger,
    bodyLimit: config.bodyLimit,
    // Shutdown drains: idle keep-alive connections close at once, busy ones when their call ends.
    forceCloseConnections: 'idle',
    // New calls during the drain get the gateway's own OpenAI-shaped 503 (the hook below).
    return503OnClosing: false,
  })

  app.addHook('onRequest', async (request, reply) => {
    if (!deps.lifecycle.closing || DRAINING_ROUTES.has(pathOf(request.url))) return
    await reply
      .code(503)
      .headers({ connection: 'close', 'retry-after': '1', 'retry-after-ms': '1000' })
      .send({
        error: {
          message: 'The gateway is shutting down. Please retry (another instance will answer).',
          type: 'server_error',
          param: null,
          code: 'shutting_down',
        },
      })
  })

  // Bodies are JSON whatever the Content-Type says (curl -d sends form encoding, fetch text/plain).
  app.removeAllContentTypeParsers()
  const parseJson = boundedJsonParser(app.getDefaultJsonParser('error', 'error'))
  app.addContentTypeParser('*', { parseAs: 'string' }, (request, body: string, done) => {
    // A large body took a while to arrive: its subject may have been blocked meanwhile, and then
    // it is not worth parsing.
    const id = body.length > RECHECK_BEFORE_PARSING ? identities.get(request) : undefined
    if (id === undefined) return parseJson(request, body, done)
    knownRefusal(id).then((decision) => {
      if (decision === undefined) parseJson(request, body, done)
      else done(new RefusedBeforeParsing(decision))
    }, done)
  })
  app.addHook('onClose', async () => uploads.close())

  /** Rate-limit headers for an answer that charged nothing (bad input), from a peek. */
  async function peekHeaders(request: FastifyRequest): Promise<Record<string, string>> {
    const id = identities.get(request)
    if (!id?.identity || id.allowListed) return {}
    try {
      const decision = await sluice
        .limiterFor(id.identity)
        .peek(id.identity.subject, { requests: 0, concurrent: 0 })
      return decision.allowed ? sluice.headersFor(decision) : {}
    } catch {
      return {}
    }
  }

  async function sendError(request: FastifyRequest, reply: FastifyReply, error: GatewayError): Promise<void> {
    const headers = closeIfUploading(request, await peekHeaders(request))
    await reply.code(error.status).headers(headers).send(error.body)
  }

  app.setErrorHandler(async (error: Error & { code?: string; statusCode?: number }, request, reply) => {
    if (error instanceof GatewayError) return sendError(request, reply, error)
    if (error instanceof RefusedBeforeParsing) return sendDenial(request, reply, error.decision)
    const mapped = bodyError(error, config.bodyLimit)
    if (mapped) return sendError(request, reply, mapped)
    if (error instanceof StoreUnavailableError) {
      // The outage policy is "closed": no decision could be made, so nothing was let through.
      // Not logged per request: the store logs each transition, and the metric counts the 503s.
      const tier = identities.get(request)?.identity?.tier
      if (tier !== undefined) deps.metrics.recordUnavailable(tier)
      const retryMs = Math.max(1, Math.ceil(error.retryAfterMs))
      await reply
        .code(503)
        .headers({ 'retry-after': String(Math.ceil(retryMs / 1000)), 'retry-after-ms': String(retryMs) })
        .send({
          error: {
            message:
              'Rate limits cannot be checked right now (the store is unavailable). Please try again shortly.',
            type: 'server_error',
            param: null,
            code: 'store_unavailable',
          },
        })
      return
    }
    request.log.error({ err: error }, 'gateway error')
    await reply.code(500).send({
      error: {
        message: 'The gateway failed to handle the request.',
        type: 'server_error',
        param: null,
        code: null,
      },
    })
  })

  app.setNotFoundHandler(async (request, reply) => {
    await reply.code(404).send({
      error: {
        message: `Unknown request URL: ${request.method} ${pathOf(request.url)}. Please check the URL for typos.`,
        type: 'invalid_request_error',
        param: null,
        code: 'unknown_url',
      },
    })
  })

  app.get('/healthz', async () => ({ status: 'ok' }))

  app.get('/readyz', async (_request, reply) => {
    if (deps.lifecycle.closing) return reply.code(503).send({ status: 'shutting down' })
    const readiness = await deps.store.readiness()
    return reply.code(readiness.ready ? 200 : 503).send(readiness.body)
  })

  if (config.metrics.enabled) {
    app.get('/metrics', async (_request, reply) => {
      const { contentType, body } = await deps.metrics.render()
      return reply.type(contentType).send(body)
    })
  }

  async function identify(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const id = await sluice.identify({
      method: request.method,
      url: request.url,
      headers: request.headers,
      remoteAddress: request.raw.socket.remoteAddress,
    })
    traceOf(request).identification = id
    if (id.refusal) {
      const headers = closeIfUploading(request, { ...id.refusal.headers })
      await reply.code(id.refusal.status).headers(headers).send(id.refusal.body)
      return
    }
    if (config.auth.requireKey && id.identity?.kind !== 'key') {
      await reply
        .code(401)
        .headers(closeIfUploading(request, { 'www-authenticate': 'Bearer' }))
        .send({
          error: {
            message:
              'You did not provide an API key. Send it as "Authorization: Bearer sk-sluice-…" or in the X-API-Key header.',
            type: 'invalid_request_error',
            param: null,
            code: 'missing_api_key',
          },
        })
      return
    }
    identities.set(request, id)
    if (request.method === 'POST') await admitBody(request, reply, id)
  }

  /**
   * Before a body is read: a subject already sure to be denied (blocked, out of requests) is
   * refused, and an address may send only `uploads.perIp` bodies at once; a body that keeps
   * arriving is then watched until it is in (uploads.ts).
   */
  /**
   * The denial a subject is already sure to get (blocked, out of requests), known without a store
   * round trip (admission.ts); the real decision, answered from memory, so it counts as a strike.
   */
  async function knownRefusal(id: Identification): Promise<Decision | undefined> {
    const identity = id.identity
    if (identity === undefined || id.allowListed || sluice.isShadow(identity.tier)) return undefined
    const limiter = sluice.limiterFor(identity)
    if (!(await knownDenied(limiter, identity.subject))) return undefined
    const reservation = await limiter.reserve(identity.subject, CHEAPEST_CALL)
    if (reservation.allowed) {
      await reservation.cancel()
      return undefined
    }
    deps.metrics.recordDecision(reservation.decision, identity.tier)
    sluice.graduate(identity, reservation.decision)
    return reservation.decision
  }

  async function sendDenial(request: FastifyRequest, reply: FastifyReply, decision: Decision): Promise<void> {
    traceOf(request).decision = decision
    const denial = sluice.denial(decision)
    const headers = closeIfUploading(request, withFallback(denial.headers, decision))
    await reply.code(denial.status).headers(headers).send(denial.body)
  }

  async function admitBody(request: FastifyRequest, reply: FastifyReply, id: Identification): Promise<void> {
    const identity = id.identity
    if (identity === undefined) return
    const refusal = await knownRefusal(id)
    if (refusal !== undefined) return sendDenial(request, reply, refusal)
    if (request.raw.complete || id.allowListed) return
    const address = identity.ipGroup ?? request.raw.socket.remoteAddress ?? 'unknown'
    if (!uploads.admit(request.raw, address)) {
      await reply
        .code(429)
        .headers({ connection: 'close', 'retry-after': '1', 'retry-after-ms': '1000' })
        .send({
          error: {
            message: `Too many request bodies are being sent from your address at once (the limit is ${uploads.limits.perIp}). Please wait for one to finish.`,
            type: 'requests',
            param: null,
            code: 'too_many_uploads',
          },
        })
    }
  }

  function handle(request: FastifyRequest, reply: FastifyReply, kind: RouteKind, upstreamPath: string) {
    const tier = identities.get(request)!.identity!.tier
    const done = deps.metrics.trackInFlight(tier)
    return deps.calls.track(serve(request, reply, kind, upstreamPath)).finally(done)
  }

  async function serve(request: FastifyRequest, reply: FastifyReply, kind: RouteKind, upstreamPath: string) {
    const id = identities.get(request)!
    const identity = id.identity!
    let valid: ValidRequest
    if (kind === 'models') {
      valid = { kind, model: '', stream: false, body: {}, clientWantsUsage: false }
    } else {
      valid = validateRequest(kind, request.body)
    }
    const route = models.route(valid.model)
    const upstream = upstreams.get(route.upstream)!
    const limiter = id.allowListed ? undefined : sluice.limiterFor(identity)
    const parts = requestParts(valid)
    const outputTokens = requestOutputTokens(valid, route.defaultOutputTokens)
    // A prompt whose fewest possible tokens cannot fit the tier is refused without counting: the
    // reservation of that bound is denied by the store, like any request too large for a limit.
    let estimate: Estimate = { promptTokens: lowerBound(parts), outputTokens }
    const oversized =
      limiter !== undefined && exceedsCapacity(limiter, accounting.reservationCosts(valid.model, estimate))
    if (!oversized) {
      const counted = await counter.count(route.encoding, parts)
      let promptTokens = counted.tokens
      // Too large to count in time: the upper bound, but never above what the tier can hold, so
      // that a prompt which may fit is not refused on an overestimate (settling corrects it).
      if (!counted.exact && limiter !== undefined) {
        promptTokens = Math.max(
          estimate.promptTokens,
          Math.min(promptTokens, tokenCapacity(limiter) - outputTokens),
        )
      }
      estimate = { promptTokens, outputTokens }
    }

    let reservation: Reservation | undefined
    let headers: Record<string, string> = {}
    if (limiter !== undefined) {
      reservation = await limiter.reserve(
        identity.subject,
        accounting.reservationCosts(valid.model, estimate),
      )
      let decision = reservation.decision
      if (oversized && !decision.allowed) {
        // Sent again and again, an oversized body is abuse: it counts toward a block.
        // Best effort: a store that cannot take the strike now must not turn the 429 into a 503.
        const strike = await strikes.strike(limiter, identity.subject).catch(() => undefined)
        if (strike?.blocked) decision = strike
      }
      deps.metrics.recordDecision(decision, identity.tier)
      const graduation = sluice.graduate(identity, decision)
      if (!reservation.allowed && !sluice.isShadow(identity.tier)) {
        traceOf(request).decision = decision
        const denial = sluice.denial(decision)
        return reply.code(denial.status).headers(withFallback(denial.headers, decision)).send(denial.body)
      }
      headers = withFallback(sluice.headersFor(decision, graduation.warning), decision)
    }
    const charge = accounting.track(reservation, {
      subject: identity.subject,
      tier: identity.tier,
      model: valid.model || '-',
      route: kind,
      stream: valid.stream,
      estimate,
      encoding: route.encoding,
      trace: traceOf(request),
    })

    let body = valid.body
    let stripUsage = false
    if (
      valid.stream &&
      (kind === 'chat' || kind === 'completions') &&
      !valid.clientWantsUsage &&
      upstream.injectStreamUsage
    ) {
      const options = isRecord(body.stream_options) ? body.stream_options : {}
      body = { ...body, stream_options: { ...options, include_usage: true } }
      stripUsage = true
    }
    traceOf(request).upstreamAt = performance.now()
    try {
      await proxyCall({
        reply,
        log: request.log,
        upstream,
        kind,
        method: kind === 'models' ? 'GET' : 'POST',
        path: upstreamPath,
        body: kind === 'models' ? undefined : JSON.stringify(body),
        stream: valid.stream,
        stripUsage,
        clientHeaders: request.headers,
        headers,
        charge,
      })
    } finally {
      // Whatever went wrong, the reservation is settled (charging the prompt) and never leaks.
      if (!charge.finished) {
        await charge.finish({ kind: 'failed', status: 500, text: '', outcome: 'upstream_error' })
      }
    }
    return reply
  }

  app.register(async (v1) => {
    v1.addHook('onRequest', identify)
    for (const route of ROUTES) {
      v1.route({
        method: route.method,
        url: route.url,
        handler: (request, reply) => handle(request, reply, route.kind, route.upstreamPath),
      })
    }
  })

  return app
}
