/**
 * What a decision says over HTTP: the rate-limit headers of a request let through, the 429 of one
 * refused, the 503 when the store cannot decide. The header formats are in headers.ts, the bodies
 * in responses.ts; this is where a decision picks them.
 */
import type { Costs, Decision } from '../limiter.js'
import {
  addRetryHeaders,
  type HeaderGroups,
  PolicyHeaderCache,
  type ResetHints,
  rateLimitHeaders,
} from './headers.js'
import { type ErrorBody, rateLimitBody, unavailableBody } from './responses.js'
import { advertisedRetryMs, shouldRetry } from './retry.js'

/** A refusal to send as it is. */
export interface Answer<S extends number = number> {
  status: S
  /** Lower-case names. */
  headers: Record<string, string>
  body: ErrorBody
}

export interface AnswersOptions {
  headerGroups: Readonly<HeaderGroups>
  concurrencyRetryCapMs: number
  maxRetryWaitMs: number
  isShadow(tier: string): boolean
}

export class Answers {
  private readonly policyHeaders = new PolicyHeaderCache()

  /** The reset hints of every answer but one that knows when the next call passes (one object for all). */
  private readonly capOnly: ResetHints

  constructor(private readonly o: AnswersOptions) {
    this.capOnly = { concurrencyRetryCapMs: o.concurrencyRetryCapMs }
  }

  /**
   * The rate-limit headers for a decision (lower-case names), in the groups switched on (or
   * `groups`): IETF `RateLimit-Policy`/`RateLimit`, legacy `X-RateLimit-*`, OpenAI
   * `x-ratelimit-*-{requests,tokens}`; `X-RateLimit-Warning` when given a warning; and for a
   * denial `Retry-After` (≥ 1 s), `retry-after-ms` and `x-should-retry: false` when waiting
   * cannot help or takes longer than `maxRetryWaitMs`. `nextCallMs` (Admitter.nextCallMs) lets
   * the reset of a limit this call emptied be told; without it that reset is left out.
   */
  headersFor(
    decision: Decision,
    warning?: string,
    groups: Readonly<HeaderGroups> = this.o.headerGroups,
    nextCallMs?: number,
  ): Record<string, string> {
    // Let through unchecked while the store is down: there is nothing true to say.
    // Tested for undefined first, as in next-call.ts: the string compare is left to the few
    // unverified decisions.
    const fallback = decision.fallback
    if (fallback !== undefined && fallback === 'open') return {}
    const cap = this.o.concurrencyRetryCapMs
    // Allowed: no call (its answer is 0), which the busy caller could not inline.
    const retry = decision.allowed ? 0 : advertisedRetryMs(decision, cap)
    const hints = nextCallMs === undefined ? this.capOnly : { nextCallMs, concurrencyRetryCapMs: cap }
    const out = rateLimitHeaders(decision, groups, retry, this.policyHeaders, hints)
    if (warning !== undefined) out['x-ratelimit-warning'] = warning
    if (!decision.allowed && !this.o.isShadow(decision.policy)) {
      addRetryHeaders(out, retry, shouldRetry(decision, retry, this.o.maxRetryWaitMs))
    }
    return out
  }

  /**
   * The 429 for a denied decision: headers (as headersFor) and the OpenAI-shaped body. `costs`
   * (what the refused call asked for) lets the message say how far over it is.
   */
  denial(decision: Decision, costs?: Costs): Answer<429> {
    const cap = this.o.concurrencyRetryCapMs
    const retry = advertisedRetryMs(decision, cap)
    const headers = rateLimitHeaders(decision, this.o.headerGroups, retry, this.policyHeaders, this.capOnly)
    addRetryHeaders(headers, retry, shouldRetry(decision, retry, this.o.maxRetryWaitMs))
    return { status: 429, headers, body: rateLimitBody(decision, retry, costs) }
  }

  /**
   * The 503 when no decision could be made (the store is unavailable and the tier fails closed):
   * `Retry-After` and `retry-after-ms` for when the store may answer again, and the body
   * `server_error` / `store_unavailable`. The same answer from the middleware and the gateway.
   */
  unavailable(retryAfterMs: number): Answer<503> {
    const headers: Record<string, string> = {}
    addRetryHeaders(headers, retryAfterMs, true)
    return { status: 503, headers, body: unavailableBody(retryAfterMs) }
  }
}
