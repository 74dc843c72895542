import { algorithmOf } from '../core/limits.js'
import type { Costs, Decision, LimitStatus } from '../limiter.js'
import { formatDuration } from './headers.js'
import { remainingOf } from './quota.js'

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

/** Dollars as people write them: `$0.0002`, `$0.000091`, `$50` (to the millionth). */
export function formatUsd(x: number): string {
  if (x > 0 && x < 0.000001) return 'less than $0.000001'
  const text = x.toFixed(6).replace(/\.?0+$/, '')
  return `$${text}`
}

/** An amount of a limit's unit, in words: "$0.0002", "20 requests", "3 calls in flight". */
function amountOf(unit: string, x: number): string {
  if (unit === 'usd') return formatUsd(x)
  return `${x} ${unit === 'concurrent' ? 'calls in flight' : unit}`
}

/** What a limit allows, in words: "20 requests per 1h0m0s", "$0.0002 per 720h0m0s". */
export function describeLimit(l: LimitStatus): string {
  const amount = amountOf(l.unit, l.limit)
  const window = formatDuration(l.windowSeconds * 1000)
  switch (algorithmOf(l.kind).refill) {
    case 'continuous':
      return `${amount} at once, refilled over ${window}`
    case 'release':
      return amount
    case 'windowEnd':
    case 'sliding':
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
 * `retryAfterMs` is what the client is told to wait (advertisedRetryMs); `costs`, when given, what
 * the refused call asked for. A limit is called spent only when nothing is left of it (less than
 * one unit of its headers: a request, a token, $0.000001); otherwise the message says that this
 * call needs more than is left, and how much is left — a smaller call may pass now.
 */
export function rateLimitBody(decision: Decision, retryAfterMs: number, costs?: Costs): ErrorBody {
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
  const asked = costs?.[limit.unit]
  if (!Number.isFinite(retryAfterMs)) {
    const what = asked === undefined ? '' : ` (${amountOf(limit.unit, asked)})`
    return errorBody(
      `This request costs more ${limit.unit}${what} than limit "${limit.name}" can ever allow (${describeLimit(limit)}); it will not pass on retry.`,
      type,
      code,
    )
  }
  const spent = remainingOf(limit) === 0
  const left = amountOf(limit.unit, limit.unit === 'usd' ? limit.remaining : remainingOf(limit))
  if (type === 'insufficient_quota') {
    if (spent) {
      return errorBody(
        `Budget "${limit.name}" (${describeLimit(limit)}) is spent. It allows more in ${wait}.`,
        type,
        code,
      )
    }
    const cost = asked === undefined ? '' : ` (${formatUsd(asked)})`
    return errorBody(
      `This call's worst-case cost${cost} exceeds what is left of budget "${limit.name}": ${left} of ${describeLimit(limit)}. A smaller call may pass now; this one can pass in ${wait}.`,
      type,
      code,
    )
  }
  if (spent) {
    return errorBody(
      `Rate limit reached on ${limit.unit} (limit "${limit.name}": ${describeLimit(limit)}, 0 left). Please try again in ${wait}.`,
      type,
      code,
    )
  }
  const need = asked === undefined ? 'more than that' : amountOf(limit.unit, asked)
  return errorBody(
    `Rate limit reached on ${limit.unit} (limit "${limit.name}": ${describeLimit(limit)}, ${left} left; this call needs ${need}). A smaller call may pass now; this one can pass in ${wait}.`,
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

/**
 * 503 when the store cannot answer and the policy is to fail closed: the same body from the
 * middleware, the gateway and (code) the admin API, `store_unavailable`.
 */
export function unavailableBody(retryAfterMs: number): ErrorBody {
  return errorBody(
    `Rate limits cannot be checked right now (the store is unavailable). Please try again in ${formatDuration(retryAfterMs)}.`,
    'server_error',
    'store_unavailable',
  )
}

/** The warning sentence when the tightest limit has less than `warnAt` of itself left. */
export function warningFor(decision: Decision, warnAt: number): string | undefined {
  let worst: LimitStatus | undefined
  const limits = decision.limits
  for (let i = 0; i < limits.length; i++) {
    const l = limits[i]!
    if (l.limit > 0 && l.remaining / l.limit < warnAt) {
      if (worst === undefined || l.remaining / l.limit < worst.remaining / worst.limit) worst = l
    }
  }
  if (worst === undefined) return undefined
  const usd = worst.unit === 'usd'
  const left = usd ? formatUsd(Math.max(0, worst.remaining)) : String(remainingOf(worst))
  return `Only ${left} of ${amountOf(worst.unit, worst.limit)} left in limit "${worst.name}"; it is full again in ${formatDuration(worst.resetMs)}.`
}
