/**
 * The gateway's Fastify app: the routes and hooks in routes/, wired. A /v1 call goes through
 * refuseWhileDraining → identifyCaller (before the body) → the JSON body parser (which may refuse
 * a large body whose subject got blocked meanwhile) → handleCall (estimate → admit → upstream →
 * settle); anything thrown goes to handleError.
 */
import Fastify, { LogController } from 'fastify'
import { OversizeStrikes, RefusedBeforeParsing } from './admission.js'
import { sharedCounter } from './counting.js'
import { DIALECTS } from './dialects/index.js'
import { shapeErrors } from './dialects/shape.js'
import { boundedJsonParser } from './json-body.js'
import { requestLogger } from './request-logger.js'
import { handleCall } from './routes/call.js'
import { type Gate, RequestIdentities, type ServerDeps } from './routes/context.js'
import { handleError } from './routes/errors.js'
import { identifyCaller, knownRefusal } from './routes/identify.js'
import { healthz, metrics, notFound, readyz, refuseWhileDraining } from './routes/system.js'
import { UploadGuard } from './uploads.js'

export { FALLBACK_HEADER, type ServerDeps } from './routes/context.js'

/** Bodies longer than this (in characters) are checked against known denials again before parsing. */
const RECHECK_BEFORE_PARSING = 64 * 1024

/** The Fastify app of the gateway: every dialect's routes behind identity, limits and accounting. */
export function buildServer(deps: ServerDeps) {
  const { config } = deps
  const gate: Gate = {
    ...deps,
    identities: new RequestIdentities(),
    counter: sharedCounter(),
    strikes: new OversizeStrikes(),
    uploads: new UploadGuard({
      timeoutMs: config.uploads.timeout,
      idleTimeoutMs: config.uploads.idleTimeout,
      minRate: config.uploads.minRate,
      perIp: config.uploads.perIp,
    }),
  }
  const app = Fastify({
    loggerInstance: deps.logger,
    logController: new LogController({ disableRequestLogging: true }),
    childLoggerFactory: requestLogger,
    bodyLimit: config.bodyLimit,
    // Shutdown drains: idle keep-alive connections close at once, busy ones when their call ends.
    forceCloseConnections: 'idle',
    // New calls during the drain get the gateway's own OpenAI-shaped 503 (refuseWhileDraining).
    return503OnClosing: false,
  })

  // Errors are written in one shape; each dialect's requests get them in its own (dialects/shape.ts).
  app.addHook('preSerialization', shapeErrors)
  app.addHook('onRequest', (request, reply) => refuseWhileDraining(gate, request, reply))

  // Bodies are JSON whatever the Content-Type says (curl -d sends form encoding, fetch text/plain).
  app.removeAllContentTypeParsers()
  const parseJson = boundedJsonParser(app.getDefaultJsonParser('error', 'error'))
  app.addContentTypeParser('*', { parseAs: 'string' }, (request, body: string, done) => {
    // A large body took a while to arrive: its subject may have been blocked meanwhile, and then
    // it is not worth parsing.
    const id = body.length > RECHECK_BEFORE_PARSING ? gate.identities.get(request) : undefined
    if (id === undefined) return parseJson(request, body, done)
    knownRefusal(gate, id).then((refusal) => {
      if (refusal === undefined) parseJson(request, body, done)
      else done(new RefusedBeforeParsing(refusal))
    }, done)
  })
  app.addHook('onClose', async () => gate.uploads.close())

  app.setErrorHandler((error: Error, request, reply) => handleError(gate, error, request, reply))
  app.setNotFoundHandler(notFound)
  app.get('/healthz', healthz)
  app.get('/readyz', (request, reply) => readyz(gate, request, reply))
  if (config.metrics.enabled) app.get('/metrics', (request, reply) => metrics(gate, request, reply))

  app.register(async (v1) => {
    v1.addHook('onRequest', (request, reply) => identifyCaller(gate, request, reply))
    for (const dialect of DIALECTS) {
      for (const route of dialect.routes) {
        v1.route({
          method: route.method,
          url: route.url,
          handler: (request, reply) => handleCall(gate, request, reply, dialect, route),
        })
      }
    }
  })

  return app
}
