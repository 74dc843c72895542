import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import { type DestinationStream, type Logger, pino } from 'pino'
import { type AdminConsoleOptions, adminConsole } from './console.js'
import { type AdminHttpError, httpErrorOf, loggableError, notFound } from './errors.js'

export interface AdminServerOptions extends AdminConsoleOptions {
  /** Default 127.0.0.1: the admin API is for operators, not the internet. */
  host?: string
  /** Default 0 (any free port; see `url`). */
  port?: number
  /**
   * Logs: false (none), a level, or `{ level, destination }` (default: `info` on stderr). The
   * `Authorization` header is redacted and every line is scrubbed of the token and of anything
   * shaped like a key or a bearer token.
   */
  logger?: false | string | { level?: string; destination?: DestinationStream }
  /** Longest time a request may take, including its body (default 30 s): slow clients cannot pile up. */
  requestTimeoutMs?: number
}

export interface AdminServer {
  readonly app: FastifyInstance
  /** `http://host:port` */
  readonly url: string
  close(): Promise<void>
}

const KEY_SHAPED = /\bsk-[A-Za-z0-9_-]{16,}/g
const BEARER = /(Bearer\s+)[^\s"\\]+/gi

/** pino with the admin token kept out of every line, whatever field or message would carry it. */
export function adminLogger(
  options: { level?: string; destination?: DestinationStream },
  secrets: readonly string[] = [],
): Logger {
  const target = options.destination ?? pino.destination({ dest: 2, sync: false })
  const scrub = (line: string) => {
    let out = line.replace(KEY_SHAPED, '[redacted]').replace(BEARER, '$1[redacted]')
    for (const secret of secrets) if (secret !== '') out = out.split(secret).join('[redacted]')
    return out
  }
  return pino(
    {
      name: 'sluice-admin',
      level: options.level ?? 'info',
      redact: {
        paths: ['req.headers.authorization', 'headers.authorization', '*.headers.authorization'],
        censor: '[redacted]',
      },
    },
    { write: (line: string) => target.write(scrub(line)) },
  )
}

/**
 * The admin API on a port of its own (e.g. reachable only from an operations network), instead
 * of (or besides) the gateway's: the same plugins in a Fastify instance that serves nothing else —
 * /admin/v1 and, unless `dashboard: false`, the dashboard at /dashboard.
 */
export async function startAdminServer(options: AdminServerOptions): Promise<AdminServer> {
  const { host = '127.0.0.1', port = 0, logger, requestTimeoutMs = 30_000, ...api } = options
  const secrets = api.auth?.token ? [api.auth.token] : []
  const loggerInstance: FastifyBaseLogger | undefined =
    logger === false
      ? undefined
      : adminLogger(typeof logger === 'string' ? { level: logger } : (logger ?? {}), secrets)
  const app = Fastify({
    ...(loggerInstance ? { loggerInstance } : { logger: false }),
    bodyLimit: api.bodyLimit ?? 64 * 1024,
    requestTimeout: requestTimeoutMs,
    // Identity for failed-auth counting comes from the socket (or the clientIp option), never a header.
    trustProxy: false,
  })
  // Outside /admin/v1 this server has nothing: answer in the API's JSON shape too.
  app.setNotFoundHandler((request, reply) => {
    const answer = notFound(
      `no route ${request.method} ${request.url.split('?')[0]!.slice(0, 200)}`,
      'unknown_route',
    )
    reply.code(answer.status).send(answer.body)
  })
  app.setErrorHandler((error, request, reply) => {
    const { answer, internal } = httpErrorOf(error)
    if (internal) request.log.error({ err: loggableError(error) }, 'request failed')
    reply
      .code(answer.status)
      .headers((answer as AdminHttpError).headers)
      .send(answer.body)
  })
  try {
    await app.register(adminConsole, api)
    await app.listen({ host, port })
  } catch (error) {
    await app.close().catch(() => {})
    throw error
  }
  const address = app.server.address()
  const bound = typeof address === 'object' && address !== null ? address.port : port
  const shownHost = host.includes(':') ? `[${host}]` : host
  return { app, url: `http://${shownHost}:${bound}`, close: () => app.close() }
}
