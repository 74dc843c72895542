import type { Insertable, Selectable } from 'kysely'
import { ControlInputError } from './errors.js'
import type { LedgerTable } from './schema.js'
import { isoTime } from './validate.js'

/**
 * What happened to a request. Refusals (the gateway said no before any upstream call) are the
 * REFUSED_OUTCOMES; `ok` was served; the rest reached the upstream and failed or were cut short.
 */
export type LedgerOutcome =
  | 'ok'
  | 'rate_limited'
  | 'blocked'
  | 'unauthenticated'
  | 'denied'
  | 'unavailable'
  | 'invalid'
  | 'upstream_error'
  | 'aborted'
  | 'cut'
  | (string & {})

export const REFUSED_OUTCOMES: readonly string[] = [
  'rate_limited',
  'blocked',
  'unauthenticated',
  'denied',
  'unavailable',
  'invalid',
]

/** One request, as the gateway appends it. Counts default to 0, optional texts to null. */
export interface LedgerEntry {
  /** Epoch ms (default: the writer's clock at append). */
  time?: number
  requestId?: string
  /** The key's public id (never the key). */
  keyId?: string
  team?: string
  /** The end user the request named. */
  user?: string
  tier?: string
  /** The subject the limits were charged to, e.g. `key:ab12cd34ef`. */
  subject?: string
  model?: string
  upstream?: string
  deployment?: string
  /** chat, responses, embeddings, messages… */
  route?: string
  stream?: boolean
  /** The HTTP status the client got. */
  status: number
  outcome: LedgerOutcome
  /** Why: the limit that refused (`tokens`, `budget`…), the upstream error's kind… */
  reason?: string
  /** Charged to limits (false: allow-listed or shadow mode). Default true. */
  limited?: boolean
  /** Where the counts come from: the upstream's usage, counting the text, the estimate, none. */
  source?: 'upstream' | 'counted' | 'estimate' | 'none'
  promptTokens?: number
  /** Input tokens read from the provider's prompt cache (part of promptTokens). */
  cachedTokens?: number
  /** Input tokens written to the 5-minute prompt cache (part of promptTokens). */
  cacheWriteTokens?: number
  /** Input tokens written to the 1-hour prompt cache (part of promptTokens; priced apart by Anthropic). */
  cacheWrite1hTokens?: number
  completionTokens?: number
  /** Output tokens spent on reasoning (part of completionTokens). */
  reasoningTokens?: number
  /** Tokens charged to the limits (default promptTokens + completionTokens; 0 when refunded). */
  tokens?: number
  /** USD charged (0 when refunded); the parts below add up to it when the price table splits it. */
  usd?: number
  /** Of `usd`: input neither read from nor written to a cache. */
  usdInput?: number
  /** Of `usd`: cache reads. */
  usdCached?: number
  /** Of `usd`: cache writes, 5-minute and 1-hour. */
  usdCacheWrite?: number
  /** Of `usd`: output, reasoning included. */
  usdOutput?: number
  latencyMs?: number
  /** Admitted by the outage policy while the store was down. */
  fallback?: 'open' | 'local'
  /** How long the request waited in a queue (docs/queueing.md); absent when it did not wait. */
  queueMs?: number
}

/** A stored row, as usage queries return it. */
export interface LedgerRow
  extends Required<
    Omit<LedgerEntry, 'time' | 'fallback' | 'source' | 'requestId' | 'reason' | 'queueMs' | OptionalText>
  > {
  id: number
  time: string
  requestId: string | null
  keyId: string | null
  team: string | null
  user: string | null
  tier: string | null
  subject: string | null
  model: string | null
  upstream: string | null
  deployment: string | null
  route: string | null
  reason: string | null
  source: string | null
  fallback: string | null
  /** Milliseconds waited in a queue; null when the request did not wait. */
  queueMs: number | null
}
type OptionalText =
  | 'keyId'
  | 'team'
  | 'user'
  | 'tier'
  | 'subject'
  | 'model'
  | 'upstream'
  | 'deployment'
  | 'route'

/** Texts longer than this are cut: a hostile model name must not bloat every row. */
export const MAX_LEDGER_TEXT = 256
const OUTCOME = /^[a-z_]{1,32}$/

function text(value: unknown, field: string): string | null {
  if (value === undefined || value === null) return null
  if (typeof value !== 'string') throw new ControlInputError(`ledger.${field}`, 'must be a string', value)
  return value.length > MAX_LEDGER_TEXT ? value.slice(0, MAX_LEDGER_TEXT) : value
}

/** A token count: a whole number ≥ 0 (the columns are BIGINT). */
function count(value: unknown, field: string): number {
  if (value === undefined) return 0
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new ControlInputError(`ledger.${field}`, 'must be a whole number ≥ 0', value)
  }
  return value
}

/** Dollars and milliseconds: a finite number ≥ 0. */
function amount(value: unknown, field: string): number {
  if (value === undefined) return 0
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new ControlInputError(`ledger.${field}`, 'must be a finite number ≥ 0', value)
  }
  return value
}

/**
 * The row to insert, checked: a bad entry throws at `append` (naming the field) instead of
 * failing a whole batch later.
 */
export function ledgerInsertOf(entry: LedgerEntry, now: number): Insertable<LedgerTable> {
  if (typeof entry !== 'object' || entry === null)
    throw new ControlInputError('ledger', 'entry must be an object', entry)
  const time = entry.time ?? now
  if (!Number.isSafeInteger(time) || time < 0)
    throw new ControlInputError('ledger.time', 'must be epoch milliseconds', time)
  if (!Number.isInteger(entry.status) || entry.status < 0 || entry.status > 999) {
    throw new ControlInputError('ledger.status', 'must be an HTTP status', entry.status)
  }
  if (typeof entry.outcome !== 'string' || !OUTCOME.test(entry.outcome)) {
    throw new ControlInputError('ledger.outcome', 'must be lowercase letters and "_"', entry.outcome)
  }
  const promptTokens = count(entry.promptTokens, 'promptTokens')
  const completionTokens = count(entry.completionTokens, 'completionTokens')
  return {
    time,
    request_id: text(entry.requestId, 'requestId'),
    key_id: text(entry.keyId, 'keyId'),
    team_id: text(entry.team, 'team'),
    user_id: text(entry.user, 'user'),
    tier: text(entry.tier, 'tier'),
    subject: text(entry.subject, 'subject'),
    model: text(entry.model, 'model'),
    upstream: text(entry.upstream, 'upstream'),
    deployment: text(entry.deployment, 'deployment'),
    route: text(entry.route, 'route'),
    stream: entry.stream === true ? 1 : 0,
    status: entry.status,
    outcome: entry.outcome,
    reason: text(entry.reason, 'reason'),
    limited: entry.limited === false ? 0 : 1,
    source: text(entry.source, 'source'),
    prompt_tokens: promptTokens,
    cached_tokens: count(entry.cachedTokens, 'cachedTokens'),
    cache_write_tokens: count(entry.cacheWriteTokens, 'cacheWriteTokens'),
    cache_write_1h_tokens: count(entry.cacheWrite1hTokens, 'cacheWrite1hTokens'),
    completion_tokens: completionTokens,
    reasoning_tokens: count(entry.reasoningTokens, 'reasoningTokens'),
    tokens: entry.tokens === undefined ? promptTokens + completionTokens : count(entry.tokens, 'tokens'),
    usd: amount(entry.usd, 'usd'),
    usd_input: amount(entry.usdInput, 'usdInput'),
    usd_cached: amount(entry.usdCached, 'usdCached'),
    usd_cache_write: amount(entry.usdCacheWrite, 'usdCacheWrite'),
    usd_output: amount(entry.usdOutput, 'usdOutput'),
    latency_ms: amount(entry.latencyMs, 'latencyMs'),
    fallback: text(entry.fallback, 'fallback'),
    queue_ms: entry.queueMs === undefined ? null : Math.round(amount(entry.queueMs, 'queueMs')),
  }
}

export function ledgerRowOf(r: Selectable<LedgerTable>): LedgerRow {
  return {
    id: Number(r.id),
    time: isoTime(Number(r.time)),
    requestId: r.request_id,
    keyId: r.key_id,
    team: r.team_id,
    user: r.user_id,
    tier: r.tier,
    subject: r.subject,
    model: r.model,
    upstream: r.upstream,
    deployment: r.deployment,
    route: r.route,
    stream: Number(r.stream) === 1,
    status: Number(r.status),
    outcome: r.outcome,
    reason: r.reason,
    limited: Number(r.limited) === 1,
    source: r.source,
    promptTokens: Number(r.prompt_tokens),
    cachedTokens: Number(r.cached_tokens),
    cacheWriteTokens: Number(r.cache_write_tokens),
    cacheWrite1hTokens: Number(r.cache_write_1h_tokens),
    completionTokens: Number(r.completion_tokens),
    reasoningTokens: Number(r.reasoning_tokens),
    tokens: Number(r.tokens),
    usd: Number(r.usd),
    usdInput: Number(r.usd_input),
    usdCached: Number(r.usd_cached),
    usdCacheWrite: Number(r.usd_cache_write),
    usdOutput: Number(r.usd_output),
    latencyMs: Number(r.latency_ms),
    fallback: r.fallback,
    queueMs: r.queue_ms === null ? null : Number(r.queue_ms),
  }
}
