/**
 * The mock's own provider account: requests and tokens per minute, refilled continuously (a token
 * bucket, as OpenAI and Anthropic describe theirs), reported on every answer in the provider's
 * headers — OpenAI's `x-ratelimit-{limit,remaining,reset}-{requests,tokens}` (resets as "1s",
 * "6m0s"), Anthropic's `anthropic-ratelimit-{requests,tokens}-{limit,remaining,reset}` (RFC 3339)
 * — and a 429 in the provider's shape when a call does not fit (Anthropic's with `retry-after`).
 * `refuse()` makes it answer 429 with a given `retry-after` to everything for a while.
 */

import type { LimitDefinition } from '../../core/algorithms/index.js'
import { tokenBucket } from '../../core/algorithms/token-bucket.js'
import { type Decision, Limiter } from '../../limiter.js'
import { MemoryStore } from '../../store/memory.js'

export interface MockRateLimits {
  /** Requests per minute. */
  requests?: number
  /** Tokens per minute (prompt + the request's output maximum, as providers count them up front). */
  tokens?: number
}

export type MockApi = 'openai' | 'anthropic'

/** What the account says to one request: go on with these headers, or refuse with this answer. */
export type MockVerdict =
  | { allowed: true; headers: Record<string, string> }
  | { allowed: false; status: 429; headers: Record<string, string>; body: string }

/** "1s", "20ms", "1.5s", "6m0s": how OpenAI writes its resets. */
export function formatReset(ms: number): string {
  if (ms < 1000) return `${Math.ceil(ms)}ms`
  if (ms < 60_000) return `${Number((ms / 1000).toFixed(3))}s`
  const m = Math.floor(ms / 60_000)
  return `${m}m${Number(((ms - m * 60_000) / 1000).toFixed(3))}s`
}

export class MockAccount {
  private limiter: Limiter | undefined
  private readonly store = new MemoryStore()
  private refuseUntil = 0
  private refuseRetryAfter = 0
  /** 429s sent. */
  refusals = 0

  constructor(limits: MockRateLimits | undefined) {
    this.setLimits(limits)
  }

  /** Changes the account's limits (the counts so far are kept). */
  setLimits(limits: MockRateLimits | undefined): void {
    const defs: Record<string, LimitDefinition> = {}
    if (limits?.requests !== undefined) {
      defs.requests = tokenBucket({ capacity: limits.requests, refillPerSecond: limits.requests / 60 })
    }
    if (limits?.tokens !== undefined) {
      defs.tokens = tokenBucket({
        capacity: limits.tokens,
        refillPerSecond: limits.tokens / 60,
        unit: 'tokens',
      })
    }
    this.limiter =
      Object.keys(defs).length === 0
        ? undefined
        : new Limiter({ store: this.store, policy: 'mock-account', limits: defs })
  }

  /** Answers 429 with `retry-after: retryAfterSeconds` to every call for `forMs` (default: as long as retry-after). */
  refuse(retryAfterSeconds: number, forMs = retryAfterSeconds * 1000): void {
    this.refuseUntil = Date.now() + forMs
    this.refuseRetryAfter = retryAfterSeconds
  }

  /** Whether the account counts tokens (then a call's tokens must be counted before check()). */
  get countsTokens(): boolean {
    return this.limiter?.knowsUnit('tokens') === true && this.limiter.names.includes('tokens')
  }

  check(api: MockApi, tokens: number): MockVerdict {
    if (Date.now() < this.refuseUntil) {
      this.refusals++
      return {
        allowed: false,
        status: 429,
        headers: { 'retry-after': String(this.refuseRetryAfter) },
        body: refusalBody(api, 'The account is over its rate limit (the mock was told to refuse).'),
      }
    }
    if (this.limiter === undefined) return { allowed: true, headers: {} }
    if (!Number.isFinite(tokens) || tokens < 0) tokens = 0
    const decision = this.limiter.consumeSync('account', { requests: 1, tokens })
    const headers = headersOf(api, decision, Date.now())
    if (decision.allowed) return { allowed: true, headers }
    this.refusals++
    const limit = decision.limits.find((l) => !l.allowed)!
    if (api === 'anthropic')
      headers['retry-after'] = String(Math.max(1, Math.ceil(decision.retryAfterMs / 1000)))
    const message =
      api === 'openai'
        ? `Rate limit reached for mock on ${limit.name} per min: Limit ${limit.limit}, Remaining ${limit.remaining}. Please try again in ${formatReset(decision.retryAfterMs)}.`
        : `This request would exceed the rate limit for your organization of ${limit.limit} ${limit.name} per minute.`
    return { allowed: false, status: 429, headers, body: refusalBody(api, message, limit.name) }
  }
}

function refusalBody(api: MockApi, message: string, type = 'requests'): string {
  if (api === 'anthropic')
    return JSON.stringify({ type: 'error', error: { type: 'rate_limit_error', message } })
  return JSON.stringify({ error: { message, type, param: null, code: 'rate_limit_exceeded' } })
}

function headersOf(api: MockApi, decision: Decision, now: number): Record<string, string> {
  const headers: Record<string, string> = {}
  for (const l of decision.limits) {
    if (api === 'openai') {
      headers[`x-ratelimit-limit-${l.name}`] = String(l.limit)
      headers[`x-ratelimit-remaining-${l.name}`] = String(l.remaining)
      headers[`x-ratelimit-reset-${l.name}`] = formatReset(l.resetMs)
    } else {
      headers[`anthropic-ratelimit-${l.name}-limit`] = String(l.limit)
      headers[`anthropic-ratelimit-${l.name}-remaining`] = String(l.remaining)
      headers[`anthropic-ratelimit-${l.name}-reset`] = new Date(Math.ceil((now + l.resetMs) / 1000) * 1000)
        .toISOString()
        .replace('.000Z', 'Z')
    }
  }
  return headers
}
