import type { DetectionLevel, DetectorName } from '../core/detectors/options.js'
import type { Unit } from '../core/limits.js'
import type { Decision, LimitStatus } from '../limiter.js'

/** Who a request counts as: an API key, an authenticated user, or an IP (IPv6: its /64). */
export type IdentityKind = 'key' | 'user' | 'ip'

/**
 * A subject crossed `alertAt` (default 80 %) of one of its limits. Sent once per subject, limit
 * and window across every instance sharing the store.
 */
export interface AlertEvent {
  event: 'sluice.alert'
  subject: string
  tier: string
  kind: IdentityKind
  limit: {
    name: string
    unit: Unit
    kind: LimitStatus['kind']
    limit: number
    remaining: number
    windowSeconds: number
    resetMs: number
  }
  /** Share of the limit used after this request (0..1). */
  used: number
  threshold: number
  /** When, by the store's clock (ISO 8601). */
  at: string
}

/** A subject started a temporary block (reported by the instance that saw it start). */
export interface BlockEvent {
  event: 'sluice.block'
  subject: string
  tier: string
  kind: IdentityKind
  retryAfterMs: number
  at: string
}

/** A request was refused with 429 by its limits or a block. */
export interface ThrottleEvent {
  subject: string
  tier: string
  deniedBy: string | undefined
  retryAfterMs: number
  blocked: boolean
}

/** Shadow mode: a request that would have been refused was let through. */
export interface ShadowEvent {
  subject: string
  tier: string
  /** What would have happened. */
  status: 403 | 429
  deniedBy: string | undefined
  retryAfterMs: number
}

/** A request carried an unknown or revoked API key. */
export interface AuthFailureEvent {
  ip: string
  /** The IP bucket charged for the failure. */
  group: string
  /** The address is over its failed-auth limit (answered 429 rather than 401). */
  lockedOut: boolean
  /** The failed key's prefix (keyPrefixOf), when it is long enough to have one. Never the key. */
  keyPrefix?: string
}

/** A request from a deny-listed key, user or address was refused with 403. */
export interface DenyEvent {
  subject: string
  ip: string
  reason: 'deny_list'
}

/** A detector raised its level for a subject (once across instances sharing the store). */
export interface DetectionEvent {
  event: 'sluice.detection'
  detector: DetectorName
  level: DetectionLevel
  subject: string
  tier: string
  /** Shadow mode: reported, never acted on. */
  shadow: boolean
  value: number
  threshold: number
  /** Shared keys and failed keys: the addresses seen. */
  addresses?: string[]
  /** Shared keys whose countries are counted (a GeoIP database is configured): the countries seen (ISO codes). */
  countries?: string[]
  /** Failed keys sharing a prefix (subject `key-prefix:<prefix>`): that prefix. */
  prefix?: string
  message: string
  at: string
}

export interface WebhookErrorEvent {
  url: string
  attempts: number
  error: string
  payload: AlertEvent | BlockEvent | DetectionEvent
}

export interface SluiceEvents {
  alert: [AlertEvent]
  block: [BlockEvent]
  throttle: [ThrottleEvent]
  shadow: [ShadowEvent]
  authFailure: [AuthFailureEvent]
  deny: [DenyEvent]
  webhookError: [WebhookErrorEvent]
  detection: [DetectionEvent]
}

/** The logging calls sluice makes; a pino logger fits. */
export interface SluiceLogger {
  info(obj: object, msg: string): void
  warn(obj: object, msg: string): void
}

/** Who an event is about (an Identity has these fields). */
interface EventSubject {
  subject: string
  tier: string
  kind: IdentityKind
}

/** The alert event for a limit a decision moved across `threshold`. */
export function alertEventOf(
  who: EventSubject,
  decision: Decision,
  limit: LimitStatus,
  threshold: number,
): AlertEvent {
  return {
    event: 'sluice.alert',
    subject: who.subject,
    tier: who.tier,
    kind: who.kind,
    limit: {
      name: limit.name,
      unit: limit.unit,
      kind: limit.kind,
      limit: limit.limit,
      remaining: limit.remaining,
      windowSeconds: limit.windowSeconds,
      resetMs: limit.resetMs,
    },
    used: limit.limit > 0 ? Math.min(1, (limit.limit - limit.remaining) / limit.limit) : 1,
    threshold,
    at: new Date(decision.now).toISOString(),
  }
}

/** The block event for a decision that started a block. */
export function blockEventOf(who: EventSubject, decision: Decision): BlockEvent {
  return {
    event: 'sluice.block',
    subject: who.subject,
    tier: who.tier,
    kind: who.kind,
    retryAfterMs: decision.retryAfterMs,
    at: new Date(decision.now).toISOString(),
  }
}
