import type { Decision, LimitStatus } from '../limiter.js'
import { formatDuration } from './headers.js'

/** The OpenAI error shape, which AI clients (and the official SDKs) understand. */
export interface ErrorBody {
  error: {
    message: string
    /** For 429s the unit that ran out: "requests", "tokens", or "insufficient_quota" for budgets. */
    type: string
    param: null
    code: string
  }
}

function errorBody(message: string, type: string, code: string): ErrorBody {
  return { error: { message, type, param: null, code } }
}

/** What a limit allows, in words: "20 requests per 1h0m0s". */
export function describeLimit(l: LimitStatus): string {
  const amount = `${l.limit} ${l.unit === 'concurrent' ? 'calls in flight' : l.unit}`
  const window = formatDuration(l.windowSeconds * 1000)
  switch (l.kind) {
    case 'tokenBucket':
      return `${amount} at once, refilled over ${window}`
    case 'concurrency':
      return amount
    default:
      return `${amount} per ${window}`
  }
}

/** The error type of a 429: the unit that ran out; budgets in dollars are "insufficient_quota". */
export function denialType(decision: Decision): string {
  if (decision.blocked) return 'requests'
  const unit = decision.limits.find((l) => l.name === decision.deniedBy)?.unit ?? 'requests'
  if (unit === 'usd') return 'insufficient_quota'
  return unit === 'concurrent' ? 'requests' : unit
}

/**
 * The body of a 429 for a denied decision, with a human message naming the limit and the wait.
 * `retryAfterMs` is what the client is told to wait (advertisedRetryMs).
 */
export function rateLimitBody(decision: Decision, retryAfterMs: number): ErrorBody {
  const type = denialType(decision)
  const code = type === 'insufficient_quota' ? 'insufficient_quota' : 'rate_limit_exceeded'
  const wait = formatDuration(retryAfterMs)
  if (decision.blocked) {
    return errorBody(
      `Temporarily blocked after repeated rate-limit errors. Please try again in ${wait}.`,
      type,
      code,
    )
  }
  const limit = decision.limits.find((l) => l.name === decision.deniedBy)
  if (limit === undefined) return errorBody(`Rate limit reached. Please try again in ${wait}.`, type, code)
  if (!Number.isFinite(retryAfterMs)) {
    return errorBody(
      `This request costs more ${limit.unit} than limit "${limit.name}" can ever allow (${describeLimit(limit)}); it will not pass on retry.`,
      type,
      code,
    )
  }
  if (type === 'insufficient_quota') {
    return errorBody(
      `Budget "${limit.name}" (${describeLimit(limit)}) is spent. It allows more in ${wait}.`,
      type,
      code,
    )
  }
  return errorBody(
    `Rate limit reached on ${limit.unit} (limit "${limit.name}": ${describeLimit(limit)}, ${Math.max(0, Math.floor(limit.remaining))} left). Please try again in ${wait}.`,
    type,
    code,
  )
}

/** 401 for a key that is unknown or revoked (the same answer for both). */
export function invalidKeyBody(): ErrorBody {
  return errorBody(
    'Invalid API key provided. Check the key, or ask for a new one.',
    'invalid_request_error',
    'invalid_api_key',
  )
}

/** 429 for an address that made too many failed authentication attempts. */
export function authLockoutBody(retryAfterMs: number): ErrorBody {
  return errorBody(
    `Too many requests with invalid API keys from this address. Please try again in ${formatDuration(retryAfterMs)}.`,
    'requests',
    'rate_limit_exceeded',
  )
}

/** 403 for a subject on the deny list. */
export function forbiddenBody(): ErrorBody {
  return errorBody('Access denied.', 'forbidden', 'access_denied')
}

/** 503 when the store cannot answer and the policy is to fail closed. */
export function unavailableBody(retryAfterMs: number): ErrorBody {
  return errorBody(
    `Rate limiting is unavailable right now. Please try again in ${formatDuration(retryAfterMs)}.`,
    'server_error',
    'service_unavailable',
  )
}
