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
  const whole = ms > 0 ? Math.ceil(ms) : 0
  if (whole < 1000) return `${whole}ms`
  const hours = Math.floor(whole / 3_600_000)
  const minutes = Math.floor((whole % 3_600_000) / 60_000)
  const secs = Math.floor((whole % 60_000) / 1000)
  const milli = whole % 1000
  // Fractional seconds without trailing zeros: .5, .25, .125
  const frac =
    milli === 0
      ? ''
      : milli % 100 === 0
        ? `.${milli / 100}`
        : milli % 10 === 0
          ? `.${milli < 100 ? '0' : ''}${milli / 10}`
          : `.${milli < 10 ? '00' : milli < 100 ? '0' : ''}${milli}`
  if (hours > 0) return `${hours}h${minutes}m${secs}${frac}s`
  if (minutes > 0) return `${minutes}m${secs}${frac}s`
  return `${secs}${frac}s`
}

/** Whole seconds for `Retry-After`: rounded up, never 0. */
export function retryAfterSeconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000))
}

/** Share of the limit still available (0..1); the smallest share is the tightest limit. */
function share(l: LimitStatus): number {
  return l.limit > 0 && l.remaining > 0 ? l.remaining / l.limit : 0
}

/**
 * True when `l` matters more to the client than `best`: it denied, or it is a rate limit and
 * `best` only counts calls in flight, or it has less left.
 */
function tighter(l: LimitStatus, best: LimitStatus, deniedBy: string | undefined): boolean {
  if (best.name === deniedBy) return false
  if (l.name === deniedBy) return true
  if (l.allowed !== best.allowed) return !l.allowed
  // Calls in flight come and go within a request; a rate limit says more about what is left.
  const lInFlight = l.kind === 'concurrency'
  if (lInFlight !== (best.kind === 'concurrency')) return !lInFlight
  const a = share(l)
  const b = share(best)
  return a < b || (a === b && l.resetMs > best.resetMs)
}

/**
 * The limit that matters most to the client: the one that denied, or else the one with the
 * smallest share left (ties: the one that takes longest to reset). Optionally only limits of `unit`.
 */
export function tightestLimit(decision: Decision, unit?: string): LimitStatus | undefined {
  let best: LimitStatus | undefined
  for (const l of decision.limits) {
    if (unit !== undefined && l.unit !== unit) continue
    if (best === undefined || tighter(l, best, decision.deniedBy)) best = l
  }
  return best
}

/** The IETF `qu` parameter for units other than requests. */
function quotaUnit(unit: string): string {
  if (unit === 'requests') return ''
  return unit === 'concurrent' ? ';qu="concurrent-requests"' : `;qu="${unit}"`
}

/**
 * `RateLimit-Policy`: one list member per limit, e.g. `"hourly";q=200;w=3600, "burst";q=20;w=10`.
 * Limits whose quota is not a whole number (dollar budgets) are left out: `q` is an integer field.
 * Limit names and units are restricted to token characters by the engine, so need no escaping.
 */
export function rateLimitPolicyHeader(limits: readonly LimitStatus[]): string {
  let out = ''
  for (const l of limits) {
    if (!Number.isInteger(l.limit)) continue
    const w = Math.max(1, Math.round(l.windowSeconds))
    out += `${out === '' ? '' : ', '}"${l.name}";q=${l.limit}${quotaUnit(l.unit)};w=${w}`
  }
  return out
}

/** `RateLimit` for one limit: `"hourly";r=12;t=30` (remaining, seconds until it resets or may be retried). */
export function rateLimitHeader(limit: LimitStatus, retryAfterMs: number): string {
  const r = limit.remaining > 0 ? Math.floor(limit.remaining) : 0
  const t = limit.allowed ? Math.ceil(Math.max(0, limit.resetMs) / 1000) : retryAfterSeconds(retryAfterMs)
  return `"${limit.name}";r=${r};t=${t}`
}

function numberText(x: number): string {
  return Number.isInteger(x) ? String(x) : String(Math.floor(x * 1e6) / 1e6)
}

/**
 * The `RateLimit-Policy` value of a decision's limits, remembered per policy: the same limits
 * give the same string, so it is built once (checked cheaply against the limits each time).
 */
export class PolicyHeaderCache {
  private readonly entries = new Map<string, { limits: LimitStatus[]; value: string }>()

  get(decision: Decision): string {
    const limits = decision.limits
    const cached = this.entries.get(decision.policy)
    if (cached !== undefined && sameShape(cached.limits, limits)) return cached.value
    const value = rateLimitPolicyHeader(limits)
    if (this.entries.size >= 1000) this.entries.clear()
    this.entries.set(decision.policy, { limits: limits.slice(), value })
    return value
  }
}

function sameShape(a: readonly LimitStatus[], b: readonly LimitStatus[]): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!
    const y = b[i]!
    if (
      x.name !== y.name ||
      x.limit !== y.limit ||
      x.windowSeconds !== y.windowSeconds ||
      x.unit !== y.unit
    ) {
      return false
    }
  }
  return true
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
  policies?: PolicyHeaderCache,
): void {
  const limits = decision.limits
  if (limits.length === 0) return
  // One pass: the tightest limit overall, and of requests and of tokens (OpenAI style).
  let tightest: LimitStatus | undefined
  let requests: LimitStatus | undefined
  let tokens: LimitStatus | undefined
  const deniedBy = decision.deniedBy
  for (const l of limits) {
    if (tightest === undefined || tighter(l, tightest, deniedBy)) tightest = l
    if (l.unit === 'requests') {
      if (requests === undefined || tighter(l, requests, deniedBy)) requests = l
    } else if (l.unit === 'tokens') {
      if (tokens === undefined || tighter(l, tokens, deniedBy)) tokens = l
    }
  }
  const t = tightest!
  if (groups.ietf) {
    const policy = policies === undefined ? rateLimitPolicyHeader(limits) : policies.get(decision)
    if (policy !== '') out['ratelimit-policy'] = policy
    if (Number.isInteger(t.limit)) out.ratelimit = rateLimitHeader(t, retryAfterMs)
  }
  let limitText: string | undefined
  let remainingText: string | undefined
  if (groups.legacy) {
    const wait = t.allowed ? t.resetMs : retryAfterMs
    limitText = numberText(t.limit)
    remainingText = numberText(Math.max(0, t.remaining))
    out['x-ratelimit-limit'] = limitText
    out['x-ratelimit-remaining'] = remainingText
    if (Number.isFinite(wait)) out['x-ratelimit-reset'] = String(Math.ceil((decision.now + wait) / 1000))
  }
  if (groups.openai) {
    if (requests !== undefined) {
      // Usually the same limit as the legacy group's: its texts are made once.
      const same = requests === t && limitText !== undefined
      out['x-ratelimit-limit-requests'] = same ? limitText! : numberText(requests.limit)
      out['x-ratelimit-remaining-requests'] = same
        ? remainingText!
        : numberText(Math.max(0, requests.remaining))
      out['x-ratelimit-reset-requests'] = formatDuration(requests.resetMs)
    }
    if (tokens !== undefined) {
      out['x-ratelimit-limit-tokens'] = numberText(tokens.limit)
      out['x-ratelimit-remaining-tokens'] = numberText(Math.max(0, tokens.remaining))
      out['x-ratelimit-reset-tokens'] = formatDuration(tokens.resetMs)
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
