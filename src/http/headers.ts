import type { Decision, LimitStatus } from '../limiter.js'

/** Which groups of rate-limit headers to send. All on by default. */
export interface HeaderGroups {
  /** IETF draft structured fields: `RateLimit-Policy` (every limit) and `RateLimit` (the tightest). */
  ietf: boolean
  /** `X-RateLimit-Limit`, `-Remaining`, `-Reset` (epoch seconds) of the tightest limit. */
  legacy: boolean
  /** `x-ratelimit-{limit,remaining,reset}-{requests,tokens}` with Go-style durations (`6m0s`). */
  openai: boolean
}

export const ALL_HEADER_GROUPS: Readonly<HeaderGroups> = Object.freeze({
  ietf: true,
  legacy: true,
  openai: true,
})

/**
 * A duration as OpenAI (and Go) print it: `12ms` under a second, else `1h2m3.5s`, `6m0s`, `1s`.
 */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return 'inf'
  const whole = Math.max(0, Math.ceil(ms))
  if (whole < 1000) return `${whole}ms`
  const hours = Math.floor(whole / 3_600_000)
  const minutes = Math.floor((whole % 3_600_000) / 60_000)
  const seconds = (whole % 60_000) / 1000
  const s = `${Number.isInteger(seconds) ? seconds : seconds.toFixed(3).replace(/0+$/, '')}s`
  if (hours > 0) return `${hours}h${minutes}m${s}`
  if (minutes > 0) return `${minutes}m${s}`
  return s
}

/** Whole seconds for `Retry-After`: rounded up, never 0. */
export function retryAfterSeconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000))
}

/** Share of the limit still available (0..1); the smallest share is the tightest limit. */
function share(l: LimitStatus): number {
  return l.limit > 0 ? Math.max(0, l.remaining) / l.limit : 0
}

/**
 * The limit that matters most to the client: the one that denied, or else the one with the
 * smallest share left (ties: the one that takes longest to reset). Optionally only limits of `unit`.
 */
export function tightestLimit(decision: Decision, unit?: string): LimitStatus | undefined {
  let best: LimitStatus | undefined
  for (const l of decision.limits) {
    if (unit !== undefined && l.unit !== unit) continue
    if (best === undefined) {
      best = l
      continue
    }
    if (l.name === decision.deniedBy && best.name !== decision.deniedBy) {
      best = l
      continue
    }
    if (best.name === decision.deniedBy) continue
    if (l.allowed !== best.allowed) {
      if (!l.allowed) best = l
      continue
    }
    const a = share(l)
    const b = share(best)
    if (a < b || (a === b && l.resetMs > best.resetMs)) best = l
  }
  return best
}

/** A limit's name as a structured-field string (names are restricted to [A-Za-z0-9_-] anyway). */
function sfString(name: string): string {
  return `"${name.replace(/[\\"]/g, '\\$&')}"`
}

/** The IETF `qu` parameter for units other than requests. */
function quotaUnit(unit: string): string {
  if (unit === 'concurrent') return ';qu="concurrent-requests"'
  return unit === 'requests' ? '' : `;qu=${sfString(unit)}`
}

/**
 * `RateLimit-Policy`: one list member per limit, e.g. `"hourly";q=200;w=3600, "burst";q=20;w=10`.
 * Limits whose quota is not a whole number (dollar budgets) are left out: `q` is an integer field.
 */
export function rateLimitPolicyHeader(limits: readonly LimitStatus[]): string {
  let out = ''
  for (const l of limits) {
    if (!Number.isInteger(l.limit)) continue
    const w = Math.max(1, Math.round(l.windowSeconds))
    out += `${out === '' ? '' : ', '}${sfString(l.name)};q=${l.limit}${quotaUnit(l.unit)};w=${w}`
  }
  return out
}

/** `RateLimit` for one limit: `"hourly";r=12;t=30` (remaining, seconds until it resets or may be retried). */
export function rateLimitHeader(limit: LimitStatus, retryAfterMs: number): string {
  const r = Math.max(0, Math.floor(limit.remaining))
  const ms = limit.allowed ? limit.resetMs : retryAfterMs
  const t = limit.allowed ? Math.max(0, Math.ceil(ms / 1000)) : retryAfterSeconds(ms)
  return `${sfString(limit.name)};r=${r};t=${t}`
}

function numberText(x: number): string {
  return Number.isInteger(x) ? String(x) : String(Math.floor(x * 1e6) / 1e6)
}

/**
 * Adds the rate-limit headers of a decision to `out` (lower-case names). `retryAfterMs` is what the
 * client is told to wait when denied (see advertisedRetryMs); it drives `t` and the reset values.
 */
export function addRateLimitHeaders(
  out: Record<string, string>,
  decision: Decision,
  groups: Readonly<HeaderGroups>,
  retryAfterMs: number,
): void {
  if (decision.limits.length === 0) return
  const tightest = tightestLimit(decision)!
  if (groups.ietf) {
    const policy = rateLimitPolicyHeader(decision.limits)
    if (policy !== '') out['ratelimit-policy'] = policy
    if (Number.isInteger(tightest.limit)) out.ratelimit = rateLimitHeader(tightest, retryAfterMs)
  }
  if (groups.legacy) {
    const wait = tightest.allowed ? tightest.resetMs : retryAfterMs
    out['x-ratelimit-limit'] = numberText(tightest.limit)
    out['x-ratelimit-remaining'] = numberText(Math.max(0, tightest.remaining))
    if (Number.isFinite(wait)) out['x-ratelimit-reset'] = String(Math.ceil((decision.now + wait) / 1000))
  }
  if (groups.openai) {
    for (const unit of ['requests', 'tokens'] as const) {
      const l = tightestLimit(decision, unit)
      if (l === undefined) continue
      out[`x-ratelimit-limit-${unit}`] = numberText(l.limit)
      out[`x-ratelimit-remaining-${unit}`] = numberText(Math.max(0, l.remaining))
      out[`x-ratelimit-reset-${unit}`] = formatDuration(l.resetMs)
    }
  }
}

/**
 * Adds `Retry-After` (whole seconds, ≥ 1) and `retry-after-ms` for a denial, or — when waiting
 * can never help (`retryAfterMs` is Infinity) — neither; and `x-should-retry: false` when told.
 */
export function addRetryHeaders(
  out: Record<string, string>,
  retryAfterMs: number,
  shouldRetry: boolean,
): void {
  if (Number.isFinite(retryAfterMs)) {
    const ms = Math.max(1, Math.ceil(retryAfterMs))
    out['retry-after'] = String(retryAfterSeconds(ms))
    out['retry-after-ms'] = String(ms)
  }
  if (!shouldRetry || !Number.isFinite(retryAfterMs)) out['x-should-retry'] = 'false'
}

/**
 * The wait to tell a client. A denial by a concurrency limit reports the time until leases expire,
 * an upper bound (calls usually end sooner), so it is capped at `concurrencyRetryCapMs` — unless
 * another limit that also denied needs longer.
 */
export function advertisedRetryMs(decision: Decision, concurrencyRetryCapMs: number): number {
  if (decision.allowed) return 0
  const retry = decision.retryAfterMs
  if (decision.blocked || !Number.isFinite(retry)) return retry
  const by = decision.limits.find((l) => l.name === decision.deniedBy)
  if (by?.kind !== 'concurrency') return retry
  let floor = concurrencyRetryCapMs
  for (const l of decision.limits) {
    if (!l.allowed && l.kind !== 'concurrency') floor = Math.max(floor, l.resetMs)
  }
  return Math.max(1, Math.min(retry, floor))
}
