import { isInFlight } from '../core/limits.js'
import type { Decision, LimitStatus } from '../limiter.js'
import { WholeTexts } from './number-text.js'
import { quotaOf, quotaUnit, remainingOf, resetMsOf, windowOf } from './quota.js'

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

/** "0m" … "59m" and "0s" … "59s", made once: most of a duration's text is one of them. */
const MINUTE_TEXT = Array.from({ length: 60 }, (_, i) => `${i}m`)
const SECOND_TEXT = Array.from({ length: 60 }, (_, i) => `${i}s`)
/** "0" … "59": the whole seconds before a fraction. */
const SECONDS_NUMBER = Array.from({ length: 60 }, (_, i) => `${i}`)

/** Texts made on first use, at most `size`: "12ms", "5h", ".25s" — few repeat often. */
function lazyTexts(size: number, make: (i: number) => string): (i: number) => string {
  const texts: (string | undefined)[] = new Array(size)
  return (i) => {
    if (!(i < size)) return make(i)
    let text = texts[i]
    if (text === undefined) {
      text = make(i)
      texts[i] = text
    }
    return text
  }
}

/** "0ms" … "999ms". */
const millisecondsText = lazyTexts(1000, (ms) => `${ms}ms`)
/** "1h", "2h"…: whole hours. */
const hourText = lazyTexts(1000, (h) => `${h}h`)
/** A fraction of a second without trailing zeros, and its unit: 500 → ".5s", 250 → ".25s", 5 → ".005s". */
const fractionText = lazyTexts(1000, (milli) =>
  milli % 100 === 0
    ? `.${milli / 100}s`
    : milli % 10 === 0
      ? `.${milli < 100 ? '0' : ''}${milli / 10}s`
      : `.${milli < 10 ? '00' : milli < 100 ? '0' : ''}${milli}s`,
)

/**
 * A duration as OpenAI (and Go) print it: `12ms` under a second, else `1h2m3.5s`, `6m0s`, `1s`.
 * Its parts come from tables (a reset is a new number on most responses): no number is turned
 * into text on the way.
 */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return 'inf'
  const whole = ms > 0 ? Math.ceil(ms) : 0
  if (whole < 1000) return millisecondsText(whole)
  // Remainders by subtraction, exact for safe integers: `%` of a double is a call to fmod.
  const safe = whole <= Number.MAX_SAFE_INTEGER
  const hours = Math.floor(whole / 3_600_000)
  const inHour = safe ? whole - hours * 3_600_000 : whole % 3_600_000
  const minutes = Math.floor(inHour / 60_000)
  const inMinute = safe ? inHour - minutes * 60_000 : whole % 60_000
  const secs = Math.floor(inMinute / 1000)
  const milli = safe ? inMinute - secs * 1000 : whole % 1000
  const seconds = milli === 0 ? SECOND_TEXT[secs]! : SECONDS_NUMBER[secs]! + fractionText(milli)
  if (hours > 0) return hourText(hours) + MINUTE_TEXT[minutes]! + seconds
  if (minutes > 0) return MINUTE_TEXT[minutes]! + seconds
  return seconds
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
  const lInFlight = isInFlight(l.kind)
  if (lInFlight !== isInFlight(best.kind)) return !lInFlight
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

/**
 * `RateLimit-Policy`: one list member per limit, e.g. `"hourly";q=200;w=3600, "burst";q=20;w=10`.
 * Every limit is listed: quotas that are not whole numbers (dollar budgets) are given in
 * millionths (`qu="usd-micros"`), since `q` is an integer field. Limit names and units are
 * restricted to token characters by the engine, so need no escaping.
 */
export function rateLimitPolicyHeader(limits: readonly LimitStatus[]): string {
  let out = ''
  for (const l of limits) {
    const unit = quotaUnit(l)
    const qu = unit === 'requests' ? '' : `;qu="${unit}"`
    out += `${out === '' ? '' : ', '}"${l.name}";q=${quotaOf(l)}${qu};w=${windowOf(l)}`
  }
  return out
}

/** What the reset values need besides the decision. */
export interface ResetHints {
  /**
   * Milliseconds until a call like this one would pass, learnt separately (Sluice.nextCallMs)
   * for an admitted call that left its tightest limit empty; without it such a reset is left out.
   */
  nextCallMs?: number
  /** The cap on a concurrency denial's advertised wait (default 1000). */
  concurrencyRetryCapMs?: number
}

/** The wait that decides the reset of a limit with nothing left: a denial's retry, else the hint. */
function nextCallOf(decision: Decision, retryAfterMs: number, hints: ResetHints | undefined) {
  return decision.allowed ? hints?.nextCallMs : Number.isFinite(retryAfterMs) ? retryAfterMs : undefined
}

function resetMs(
  l: LimitStatus,
  r: number,
  decision: Decision,
  retryAfterMs: number,
  hints: ResetHints | undefined,
): number | undefined {
  const next = nextCallOf(decision, retryAfterMs, hints)
  return resetMsOf(l, r, retryAfterMs, next, hints?.concurrencyRetryCapMs ?? 1000)
}

/**
 * `RateLimit` for one limit: `"hourly";r=12;t=30` — `r` what is left in the unit of its policy
 * item, `t` seconds until more is available, never beyond the window `w` (see resetMsOf); `t` is
 * left out when it cannot be told.
 */
export function rateLimitHeader(
  limit: LimitStatus,
  decision: Decision,
  retryAfterMs: number,
  hints?: ResetHints,
): string {
  const r = remainingOf(limit)
  const wait = resetMs(limit, r, decision, retryAfterMs, hints)
  return wait === undefined ? `"${limit.name}";r=${r}` : `"${limit.name}";r=${r};t=${Math.ceil(wait / 1000)}`
}

/**
 * The `RateLimit-Policy` value of a decision's limits, remembered per policy: the same limits
 * give the same string, so it is built once (checked cheaply against the limits each time).
 */
export class PolicyHeaderCache {
  private readonly entries = new Map<string, { limits: LimitStatus[]; value: string }>()

  /** The entry get() served last, and its policy: requests come in runs of one policy. */
  private lastPolicy = ''
  private last: { limits: LimitStatus[]; value: string } | undefined

  get(decision: Decision): string {
    const limits = decision.limits
    const policy = decision.policy
    const last = this.last
    // The last entry first: comparing the policy's name with the last one's is cheaper than the
    // Map lookup; the shape is checked either way (a limit changed under the same name).
    if (last !== undefined && this.lastPolicy === policy && sameShape(last.limits, limits)) return last.value
    let cached = this.entries.get(policy)
    if (cached === undefined || !sameShape(cached.limits, limits)) {
      cached = { limits: limits.slice(), value: rateLimitPolicyHeader(limits) }
      if (this.entries.size >= 1000) this.entries.clear()
      this.entries.set(policy, cached)
    }
    this.lastPolicy = policy
    this.last = cached
    return cached.value
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
 * Adds the rate-limit headers of a decision to `out` (lower-case names), as rateLimitHeaders()
 * makes them.
 */
export function addRateLimitHeaders(
  out: Record<string, string>,
  decision: Decision,
  groups: Readonly<HeaderGroups>,
  retryAfterMs: number,
  policies?: PolicyHeaderCache,
  hints?: ResetHints,
): void {
  const headers = rateLimitHeaders(decision, groups, retryAfterMs, policies, hints)
  for (const name in headers) out[name] = headers[name]!
}

/**
 * The rate-limit headers of a decision (lower-case names), in a new object. `retryAfterMs` is
 * what the client is told to wait when denied (see advertisedRetryMs); it drives `t` and the reset
 * values. Every figure is a whole number in the unit of the limit's `RateLimit-Policy` item (quota.ts).
 */
export function rateLimitHeaders(
  decision: Decision,
  groups: Readonly<HeaderGroups>,
  retryAfterMs: number,
  policies?: PolicyHeaderCache,
  hints?: ResetHints,
): Record<string, string> {
  const limits = decision.limits
  if (limits.length === 0) return {}
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
  const r = remainingOf(t)
  const wait = resetMs(t, r, decision, retryAfterMs, hints)
  // The tightest limit's figures as text, made once: every group shows what is left, and the
  // legacy group and the OpenAI-style group of its unit (one limit of requests: the usual case)
  // show the same two numbers.
  const limitText = groups.legacy || groups.openai ? quotaText(quotaOf(t)) : ''
  const remainingText = REMAINING_TEXT.text(r)
  const policy = groups.ietf
    ? policies === undefined
      ? rateLimitPolicyHeader(limits)
      : policies.get(decision)
    : ''
  if (
    wait !== undefined &&
    requests === t &&
    tokens === undefined &&
    groups.ietf &&
    groups.legacy &&
    groups.openai
  ) {
    // Every group, for a policy that counts requests and no tokens (the default tiers' shape
    // without tokens): one literal makes the object in its final shape at once, where eight
    // added properties moved it through eight shapes and grew its property store twice.
    const resetText = flat(formatDuration(wait))
    return {
      'ratelimit-policy': policy,
      ratelimit: flat(itemHead(t.name) + remainingText + WAIT_TEXT.text(Math.ceil(wait / 1000))),
      'x-ratelimit-limit': limitText,
      'x-ratelimit-remaining': remainingText,
      'x-ratelimit-reset': EPOCH_TEXT.text(Math.ceil((decision.now + wait) / 1000)),
      'x-ratelimit-limit-requests': limitText,
      'x-ratelimit-remaining-requests': remainingText,
      'x-ratelimit-reset-requests': resetText,
    }
  }
  const out: Record<string, string> = {}
  if (groups.ietf) {
    out['ratelimit-policy'] = policy
    const head = itemHead(t.name) + remainingText
    out.ratelimit = flat(wait === undefined ? head : head + WAIT_TEXT.text(Math.ceil(wait / 1000)))
  }
  if (groups.legacy) {
    out['x-ratelimit-limit'] = limitText
    out['x-ratelimit-remaining'] = remainingText
    if (wait !== undefined)
      out['x-ratelimit-reset'] = EPOCH_TEXT.text(Math.ceil((decision.now + wait) / 1000))
  }
  if (groups.openai) {
    if (requests === t) putOpenAIGroup(out, OPENAI_NAMES.requests, limitText, remainingText, wait)
    else if (requests !== undefined) addOpenAIGroup(out, 'requests', requests, decision, retryAfterMs, hints)
    if (tokens === t) putOpenAIGroup(out, OPENAI_NAMES.tokens, limitText, remainingText, wait)
    else if (tokens !== undefined) addOpenAIGroup(out, 'tokens', tokens, decision, retryAfterMs, hints)
  }
  return out
}

/** Where flat() leaves the character it reads, so that the read is not optimised away. */
let _flatProbe = 0

/**
 * The text made flat: a text of 13 characters or more made by `+` is a pair of texts, which
 * Node's header check (a RegExp test) flattens on V8's slow path (~600 instructions); a character
 * read flattens it in place for ~180, and costs a flat text next to nothing.
 */
function flat(text: string): string {
  _flatProbe = text.charCodeAt(0)
  return text
}

/** What is left (every group's), the `t` of `RateLimit` and `X-RateLimit-Reset`'s epoch second, as text. */
const REMAINING_TEXT = new WholeTexts()
const WAIT_TEXT = new WholeTexts(';t=')
const EPOCH_TEXT = new WholeTexts()
/** The quota of an OpenAI-style group that is not the tightest limit's (that one is quotaText's). */
const OTHER_QUOTA_TEXT = new WholeTexts()

let lastItemName = ''
let lastItemHead = '"";r='

/** `"name";r=`, the start of a `RateLimit` item, the last one remembered (one per limit name). */
function itemHead(name: string): string {
  if (name !== lastItemName) {
    lastItemHead = `"${name}";r=`
    lastItemName = name
  }
  return lastItemHead
}

let lastQuota = Number.NaN
let lastQuotaText = ''

/** A limit's quota as text, the last one remembered: a server's limits are few and repeat. */
function quotaText(quota: number): string {
  if (quota !== lastQuota) {
    lastQuotaText = String(quota)
    lastQuota = quota
  }
  return lastQuotaText
}

/** `x-ratelimit-{limit,remaining,reset}-<unit>`, the reset as a duration (`6m0s`, `12ms`). */
function addOpenAIGroup(
  out: Record<string, string>,
  unit: 'requests' | 'tokens',
  l: LimitStatus,
  decision: Decision,
  retryAfterMs: number,
  hints: ResetHints | undefined,
): void {
  const r = remainingOf(l)
  const wait = resetMs(l, r, decision, retryAfterMs, hints)
  putOpenAIGroup(out, OPENAI_NAMES[unit], OTHER_QUOTA_TEXT.text(quotaOf(l)), REMAINING_TEXT.text(r), wait)
}

function putOpenAIGroup(
  out: Record<string, string>,
  names: (typeof OPENAI_NAMES)[keyof typeof OPENAI_NAMES],
  limitText: string,
  remainingText: string,
  wait: number | undefined,
): void {
  out[names.limit] = limitText
  out[names.remaining] = remainingText
  if (wait !== undefined) out[names.reset] = flat(formatDuration(wait))
}

/** The OpenAI-style header names per unit, built once rather than on every response. */
const OPENAI_NAMES = {
  requests: {
    limit: 'x-ratelimit-limit-requests',
    remaining: 'x-ratelimit-remaining-requests',
    reset: 'x-ratelimit-reset-requests',
  },
  tokens: {
    limit: 'x-ratelimit-limit-tokens',
    remaining: 'x-ratelimit-remaining-tokens',
    reset: 'x-ratelimit-reset-tokens',
  },
} as const

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
