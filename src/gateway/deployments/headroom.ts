/**
 * What a provider's answer says of its account: its limits, what is left, when it resets, and how
 * long to stay away after a refusal — from OpenAI's (and Azure's) `x-ratelimit-*` headers and
 * Anthropic's `anthropic-ratelimit-*`, plus `retry-after` / `retry-after-ms`. Pure: the time the
 * answer arrived is passed in.
 */
import type { BoardUpdate } from './board.js'

type Headers = Record<string, string | string[] | undefined>

/** After a refusal that says nothing of when to come back. */
export const DEFAULT_COOL_MS = 5_000

/** Statuses that mean the provider cannot take calls now: rate limited, unavailable, overloaded. */
export function isRefusal(status: number): boolean {
  return status === 429 || status === 503 || status === 529
}

function header(headers: Headers, name: string): string | undefined {
  const v = headers[name]
  return Array.isArray(v) ? v[0] : v
}

function count(headers: Headers, name: string): number | undefined {
  const v = header(headers, name)
  if (v === undefined || v.trim() === '') return undefined
  const n = Number(v)
  return Number.isFinite(n) && n >= 0 ? n : undefined
}

/** OpenAI's reset durations: "1s", "6m0s", "20ms", "1.5s", "1h2m3.5s". */
export function parseResetDuration(value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  const text = value.trim()
  if (text === '') return undefined
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text) * 1000
  const re = /(\d+(?:\.\d+)?)(ms|h|m|s)/g
  let total = 0
  let consumed = 0
  for (const m of text.matchAll(re)) {
    const n = Number(m[1])
    total += m[2] === 'h' ? n * 3_600_000 : m[2] === 'm' ? n * 60_000 : m[2] === 's' ? n * 1000 : n
    consumed += m[0].length
  }
  return consumed === text.length ? total : undefined
}

/** Anthropic's resets: an RFC 3339 time. */
function untilTime(value: string | undefined, now: number): number | undefined {
  if (value === undefined) return undefined
  const t = Date.parse(value)
  return Number.isFinite(t) ? Math.max(0, t - now) : undefined
}

/** The provider's view of requests and tokens in an answer's headers (undefined where absent). */
export interface ProviderHeadroom {
  limitRequests?: number
  remainingRequests?: number
  resetRequestsMs?: number
  limitTokens?: number
  remainingTokens?: number
  resetTokensMs?: number
  retryAfterMs?: number
}

export function readHeadroom(headers: Headers, now: number): ProviderHeadroom {
  const h: ProviderHeadroom = {}
  const set = <K extends keyof ProviderHeadroom>(k: K, v: number | undefined) => {
    if (v !== undefined) h[k] = v
  }
  if (
    header(headers, 'x-ratelimit-limit-requests') !== undefined ||
    header(headers, 'x-ratelimit-limit-tokens') !== undefined
  ) {
    set('limitRequests', count(headers, 'x-ratelimit-limit-requests'))
    set('remainingRequests', count(headers, 'x-ratelimit-remaining-requests'))
    set('resetRequestsMs', parseResetDuration(header(headers, 'x-ratelimit-reset-requests')))
    set('limitTokens', count(headers, 'x-ratelimit-limit-tokens'))
    set('remainingTokens', count(headers, 'x-ratelimit-remaining-tokens'))
    set('resetTokensMs', parseResetDuration(header(headers, 'x-ratelimit-reset-tokens')))
  } else {
    set('limitRequests', count(headers, 'anthropic-ratelimit-requests-limit'))
    set('remainingRequests', count(headers, 'anthropic-ratelimit-requests-remaining'))
    set('resetRequestsMs', untilTime(header(headers, 'anthropic-ratelimit-requests-reset'), now))
    set('limitTokens', count(headers, 'anthropic-ratelimit-tokens-limit'))
    set('remainingTokens', count(headers, 'anthropic-ratelimit-tokens-remaining'))
    set('resetTokensMs', untilTime(header(headers, 'anthropic-ratelimit-tokens-reset'), now))
  }
  const ms = count(headers, 'retry-after-ms')
  const s = count(headers, 'retry-after')
  if (ms !== undefined) h.retryAfterMs = ms
  else if (s !== undefined) h.retryAfterMs = s * 1000
  return h
}

/**
 * What to write on the board after an answer: the provider's limits; "full until the reset" for
 * what it reports none left of; after a refusal, a cool-down for its retry-after (or the reset of
 * what ran out, or DEFAULT_COOL_MS).
 */
export function boardUpdateOf(status: number, h: ProviderHeadroom): BoardUpdate {
  const u: BoardUpdate = {}
  if (h.limitRequests !== undefined && h.limitRequests > 0) u.limitRequests = h.limitRequests
  if (h.limitTokens !== undefined && h.limitTokens > 0) u.limitTokens = h.limitTokens
  const outOfRequests = h.remainingRequests !== undefined && h.remainingRequests < 1
  const outOfTokens = h.remainingTokens !== undefined && h.remainingTokens < 1
  if (outOfRequests && h.resetRequestsMs !== undefined) u.fullRequestsMs = h.resetRequestsMs
  if (outOfTokens && h.resetTokensMs !== undefined) u.fullTokensMs = h.resetTokensMs
  if (isRefusal(status)) {
    let cool = h.retryAfterMs
    if (cool === undefined && (outOfRequests || outOfTokens)) {
      cool = Math.max(outOfRequests ? (h.resetRequestsMs ?? 0) : 0, outOfTokens ? (h.resetTokensMs ?? 0) : 0)
    }
    u.coolMs = cool !== undefined && cool > 0 ? cool : DEFAULT_COOL_MS
  }
  return u
}

export function isEmptyUpdate(u: BoardUpdate): boolean {
  return Object.keys(u).length === 0
}
