import { capacityOf, type LimitDefinition, type Unit, windowSecondsOf } from './core/limits.js'
import type { LimitResult, StoreResult } from './store/types.js'

/**
 * A decision as the caller reads it, made from a store's result: one per call, so its making is
 * on every call's path (the limits' fixed figures are worked out once per policy: limitFacts).
 */

export interface LimitStatus {
  name: string
  unit: Unit
  kind: LimitDefinition['kind']
  limit: number
  remaining: number
  /** Milliseconds until the limit is full again. */
  resetMs: number
  windowSeconds: number
  allowed: boolean
}

export interface Decision {
  allowed: boolean
  /** 0 when allowed; whole milliseconds until a retry can pass; Infinity when it never can. */
  retryAfterMs: number
  /** The limit that denied (the one with the longest wait), or "block". */
  deniedBy: string | undefined
  /** Denied because the subject is blocked for repeated denials. */
  blocked: boolean
  /** This denial started a block. */
  blockedNow: boolean
  /** False when the store could not answer in time and the outage policy decided (see `fallback`). */
  verified: boolean
  /** How an unverified decision was made: 'open' (let through unchecked) or 'local' (this process's share). */
  fallback: 'open' | 'local' | undefined
  limits: LimitStatus[]
  /** Limits this call moved across `alertAt`, reported once per subject, limit and window. */
  alerts: LimitStatus[]
  policy: string
  subject: string
  /** The store's clock when it decided (ms since the epoch). */
  now: number
  /** Set when the call waited in a queue (WaitOptions): how long, in ms. */
  waitedMs?: number
}

/** Shared by every decision without alerts, to spare an allocation per call. */
const NO_ALERTS: LimitStatus[] = Object.freeze([]) as unknown as LimitStatus[]

/** What a limit's status says of it whatever the call: worked out once per policy. */
export interface LimitFacts {
  name: string
  unit: Unit
  kind: LimitDefinition['kind']
  limit: number
  windowSeconds: number
}

/**
 * V8 gives a number field that ever held a number outside the small-integer range (a capacity of
 * 1e12, a fraction of a dollar) its own box in every new object, even when the value is copied
 * from another object: three boxes per limit status. One object of each shape made here, at load,
 * with strings in those fields turns them into plain fields for every later object of the shape
 * (same keys, same order): a number copied is a pointer copied, and a whole number in the
 * small-integer range is not boxed. Values are untouched.
 */
function plainNumberFields(): void {
  const s = '' as unknown as number
  const facts: LimitFacts = { name: '', unit: 'requests', kind: 'tokenBucket', limit: s, windowSeconds: s }
  const status: LimitStatus = {
    name: '',
    unit: 'requests',
    kind: 'tokenBucket',
    limit: s,
    remaining: s,
    resetMs: s,
    windowSeconds: s,
    allowed: false,
  }
  void facts
  void status
}
plainNumberFields()

/** Each limit's fixed figures, once per policy. */
export function limitFacts(names: readonly string[], definitions: readonly LimitDefinition[]): LimitFacts[] {
  return definitions.map((d, i) => ({
    name: names[i]!,
    unit: d.unit,
    kind: d.kind,
    limit: capacityOf(d),
    windowSeconds: windowSecondsOf(d),
  }))
}

function roundRemaining(unit: Unit, x: number): number {
  if (!(x > 0)) return 0
  return unit === 'usd' ? Math.floor(x * 1e6 + 1e-6) / 1e6 : Math.floor(x + 1e-9)
}

/** One limit's status in a decision: one literal for every path, so every status has one shape. */
function limitStatus(f: LimitFacts, l: LimitResult, allowed: boolean): LimitStatus {
  return {
    name: f.name,
    unit: f.unit,
    kind: f.kind,
    limit: f.limit,
    remaining: roundRemaining(f.unit, l.remaining),
    resetMs: Math.ceil(l.resetMs),
    windowSeconds: f.windowSeconds,
    allowed,
  }
}

/** A store result as a policy's decision (`charging`: consume or reserve, whose alerts count). */
export function decisionOf(
  facts: readonly LimitFacts[],
  policy: string,
  subject: string,
  r: StoreResult,
  costs: readonly number[],
  charging: boolean,
): Decision {
  const n = facts.length
  const limits: LimitStatus[] = new Array(n)
  let alerts: LimitStatus[] = NO_ALERTS
  let retry = 0
  let deniedBy: string | undefined
  for (let i = 0; i < n; i++) {
    const f = facts[i]!
    const l = r.limits[i]!
    const status = limitStatus(f, l, l.allowed)
    limits[i] = status
    if (l.alerted && charging && costs[i]! > 0) {
      if (alerts === NO_ALERTS) alerts = []
      alerts.push(status)
    }
    if (!l.allowed && l.retryAfterMs >= retry) {
      retry = l.retryAfterMs
      deniedBy = status.name
    }
  }
  const blocked = r.blockedMs > 0
  if (blocked) {
    retry = Math.max(retry, r.blockedMs)
    deniedBy = 'block'
  }
  return {
    allowed: r.allowed,
    retryAfterMs: r.allowed ? 0 : Math.max(1, Math.ceil(retry)),
    deniedBy: r.allowed ? undefined : deniedBy,
    blocked,
    blockedNow: r.blockedNow,
    verified: r.fallback === undefined,
    fallback: r.fallback,
    limits,
    alerts,
    policy,
    subject,
    now: r.now,
  }
}

/**
 * decisionOf for a policy of one limit without alerts or blocks (the Limiter's one-limit path):
 * the same fields in the same order, and the same values, as decisionOf gives such a result
 * (test/limiter-one.test.ts), with no loop and one status.
 */
export function decisionOfOne(f: LimitFacts, policy: string, subject: string, r: StoreResult): Decision {
  const l = r.limits[0]!
  // `=== true`: fields V8 cannot prove boolean are otherwise tested for every falsy value.
  const allowed = r.allowed === true
  const limitAllowed = l.allowed === true
  // decisionOf's loop for one limit: a denial with a wait (never negative in practice) names it.
  const denied = !allowed && !limitAllowed && l.retryAfterMs >= 0
  return {
    allowed,
    retryAfterMs: allowed ? 0 : Math.max(1, Math.ceil(denied ? l.retryAfterMs : 0)),
    deniedBy: denied ? f.name : undefined,
    blocked: false,
    blockedNow: false,
    verified: true,
    fallback: undefined,
    limits: [limitStatus(f, l, limitAllowed)],
    alerts: NO_ALERTS,
    policy,
    subject,
    now: r.now,
  }
}
