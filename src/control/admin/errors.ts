import { StoreUnavailableError } from '../../store/errors.js'
import { ConflictError, ControlInputError, NotFoundError } from '../errors.js'
import { ReadOnlyKeyError } from './config-keys.js'

/** The one JSON error shape every admin answer that is not a success uses (OpenAI's). */
export interface AdminErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null }
}

/** An answer the admin API makes itself: the status, the body, and any header (Retry-After…). */
export class AdminHttpError extends Error {
  override name = 'AdminHttpError'
  constructor(
    readonly status: number,
    message: string,
    readonly type: string,
    readonly code: string | null,
    readonly param: string | null = null,
    readonly headers: Record<string, string> = {},
  ) {
    super(message)
  }

  get body(): AdminErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } }
  }
}

export const notFound = (message: string, code = 'not_found') =>
  new AdminHttpError(404, message, 'not_found_error', code)

/** Node's network errors and PostgreSQL's "cannot connect / shutting down" classes: try again later. */
const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'SQLITE_BUSY',
  '57P01',
  '57P02',
  '57P03',
  '08000',
  '08001',
  '08003',
  '08006',
])

function isUnavailable(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code
  if (typeof code === 'string' && UNAVAILABLE_CODES.has(code)) return true
  const message = error instanceof Error ? error.message : ''
  return /timeout|Connection terminated/i.test(message)
}

/**
 * Fastify's own errors (bad JSON, body too large…) carry a 4xx `statusCode` and a `code` such as
 * FST_ERR_CTP_BODY_TOO_LARGE; their messages are safe to show.
 */
function fastifyError(error: unknown): AdminHttpError | undefined {
  const e = error as { statusCode?: unknown; code?: unknown; message?: unknown } | null
  if (typeof e?.statusCode !== 'number' || e.statusCode < 400 || e.statusCode >= 500) return undefined
  const code = typeof e.code === 'string' ? e.code : null
  if (code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    return new AdminHttpError(
      413,
      'the request body is too large',
      'invalid_request_error',
      'request_too_large',
    )
  }
  if (error instanceof SyntaxError || code === 'FST_ERR_CTP_INVALID_JSON_BODY') {
    return new AdminHttpError(400, 'the body is not valid JSON', 'invalid_request_error', 'invalid_json')
  }
  const message = typeof e.message === 'string' ? e.message.slice(0, 200) : 'bad request'
  return new AdminHttpError(e.statusCode, message, 'invalid_request_error', code?.toLowerCase() ?? null)
}

/**
 * The answer for any error a handler or Fastify raised: input → 400 naming the field, unknown id →
 * 404, conflict → 409, a database that does not answer → 503; anything else is a 500 whose
 * details go to the log only (`internal: true`).
 */
export function httpErrorOf(error: unknown): { answer: AdminHttpError; internal: boolean } {
  if (error instanceof AdminHttpError) return { answer: error, internal: false }
  if (error instanceof ControlInputError) {
    return {
      answer: new AdminHttpError(400, error.message, 'invalid_request_error', 'invalid_value', error.field),
      internal: false,
    }
  }
  if (error instanceof NotFoundError) return { answer: notFound(error.message), internal: false }
  if (error instanceof ReadOnlyKeyError) {
    return {
      answer: new AdminHttpError(409, error.message, 'conflict_error', 'read_only_key', 'id'),
      internal: false,
    }
  }
  if (error instanceof ConflictError) {
    return { answer: new AdminHttpError(409, error.message, 'conflict_error', 'conflict'), internal: false }
  }
  if (error instanceof SyntaxError) {
    return {
      answer: new AdminHttpError(400, 'the body is not valid JSON', 'invalid_request_error', 'invalid_json'),
      internal: false,
    }
  }
  if (error instanceof StoreUnavailableError) {
    // The limiter's store (Redis) did not answer in time: the subject routes cannot read live state.
    const seconds = String(Math.max(1, Math.ceil(error.retryAfterMs / 1000)))
    return {
      answer: new AdminHttpError(
        503,
        "the limiter's store did not answer; try again",
        'server_error',
        'store_unavailable',
        null,
        { 'retry-after': seconds },
      ),
      internal: false,
    }
  }
  const fromFastify = fastifyError(error)
  if (fromFastify) return { answer: fromFastify, internal: false }
  if (isUnavailable(error)) {
    return {
      answer: new AdminHttpError(
        503,
        'the control-plane database did not answer; try again',
        'server_error',
        'database_unavailable',
        null,
        { 'retry-after': '1' },
      ),
      internal: true,
    }
  }
  return {
    answer: new AdminHttpError(500, 'internal error (see the server log)', 'server_error', 'internal_error'),
    internal: true,
  }
}

/**
 * What may be logged of an internal error: its class, code and message — never `detail`,
 * parameters or the failing row, where a database could echo a stored hash.
 */
export function loggableError(error: unknown): { type: string; code?: string; message: string } {
  const e = error as { name?: unknown; code?: unknown; message?: unknown } | null
  return {
    type: typeof e?.name === 'string' ? e.name : typeof error,
    ...(typeof e?.code === 'string' ? { code: e.code } : {}),
    message: typeof e?.message === 'string' ? e.message.slice(0, 500) : String(error).slice(0, 500),
  }
}
