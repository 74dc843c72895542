/**
 * What feeds the admin events feed: the HTTP core's `events` (alerts, blocks, refusals by a
 * budget, webhook failures), a webhook's deliveries, and the store guard's transitions. Each
 * connector returns the function that disconnects it. A connector never throws into its producer:
 * the producer is the request path.
 */
import type { EventEmitter } from 'node:events'
import type { AlertEvent, BlockEvent, SluiceEvents, ThrottleEvent } from '../../http/events.js'
import type { BreakerState } from '../../store/breaker.js'
import type { GuardObserver, StoreHealth } from '../../store/guarded.js'
import type { AdminEventFeed, AdminEventInput } from './events.js'

/** A webhook delivery's outcome, as the sender knows it (the core reports failures as `webhookError`). */
export interface WebhookDelivery {
  url: string
  attempts: number
  /** The event sent (the same object the core emitted). */
  payload: AlertEvent | BlockEvent
  /** Absent: delivered. */
  error?: string
}

/** The HTTP core's event emitter, plus `webhookDelivered` where the sender reports successes. */
export type SluiceEventEmitter = EventEmitter<SluiceEvents> | EventEmitter

export interface SluiceEventsOptions {
  /**
   * Whether a tier's limit is a dollar budget (unit `usd`): its refusals are reported as budget
   * exhaustion. Default: none is.
   */
  isBudget?: (tier: string, limit: string) => boolean
  /** One budget-exhaustion event per subject and limit within this time (default 10 minutes). */
  budgetQuietMs?: number
  /** A malformed event (a bug); default: ignored. */
  onError?: (error: unknown) => void
  clock?: () => number
}

const MAX_QUIET_ENTRIES = 10_000

/** Alerts, blocks, refusals by a budget and webhook results from the HTTP core, into the feed. */
export function connectSluiceEvents(
  feed: AdminEventFeed,
  source: { events: SluiceEventEmitter },
  options: SluiceEventsOptions = {},
): () => void {
  const emitter = source.events as EventEmitter
  const clock = options.clock ?? Date.now
  const quietMs = options.budgetQuietMs ?? 600_000
  const quietUntil = new Map<string, number>()
  // The feed event each alert or block became, by the object the core emitted (and later hands to
  // its webhook sender): deliveries point back at what they delivered.
  const published = new WeakMap<object, string>()
  const safely =
    <A extends unknown[]>(handler: (...args: A) => AdminEventInput | undefined, remember?: boolean) =>
    (...args: A) => {
      try {
        const input = handler(...args)
        if (input === undefined) return
        const event = feed.publish(input)
        if (remember && typeof args[0] === 'object' && args[0] !== null) published.set(args[0], event.id)
      } catch (error) {
        options.onError?.(error)
      }
    }

  const onAlert = safely(
    (e: AlertEvent) => ({
      type: 'alert',
      severity: 'warning',
      subject: e.subject,
      tier: e.tier,
      message: `${e.subject} used ${Math.round(e.used * 100)}% of its "${e.limit.name}" limit (${e.limit.unit})`,
      data: { limit: e.limit, used: e.used, threshold: e.threshold },
      time: timeOf(e.at, clock),
    }),
    true,
  )
  const onBlock = safely(
    (e: BlockEvent) => ({
      type: 'block',
      severity: 'critical',
      subject: e.subject,
      tier: e.tier,
      message: `${e.subject} is blocked for ${forPeople(e.retryAfterMs)} after repeated 429s`,
      data: {
        retryAfterMs: e.retryAfterMs,
        until: new Date(timeOf(e.at, clock) + e.retryAfterMs).toISOString(),
      },
      time: timeOf(e.at, clock),
    }),
    true,
  )
  const onThrottle = safely((e: ThrottleEvent) => {
    if (e.deniedBy === undefined || e.blocked || options.isBudget?.(e.tier, e.deniedBy) !== true)
      return undefined
    const now = clock()
    const key = `${e.subject}\u0000${e.tier}\u0000${e.deniedBy}`
    if ((quietUntil.get(key) ?? 0) > now) return undefined
    if (quietUntil.size >= MAX_QUIET_ENTRIES) {
      for (const [k, until] of quietUntil) if (until <= now) quietUntil.delete(k)
      // Still full: forget the oldest (a repeat event is the worst that can happen).
      if (quietUntil.size >= MAX_QUIET_ENTRIES) quietUntil.delete(quietUntil.keys().next().value!)
    }
    quietUntil.set(key, now + quietMs)
    const wait = Number.isFinite(e.retryAfterMs) ? ` until it resets in ${forPeople(e.retryAfterMs)}` : ''
    return {
      type: 'budget',
      severity: 'critical',
      subject: e.subject,
      tier: e.tier,
      message: `${e.subject} spent its "${e.deniedBy}" budget: refused${wait}`,
      data: { limit: e.deniedBy, retryAfterMs: Number.isFinite(e.retryAfterMs) ? e.retryAfterMs : null },
    }
  })
  const onDelivery = (outcome: WebhookDelivery) => webhookEvent(outcome, published)
  const onWebhookError = safely(
    (e: { url: string; attempts: number; error: string; payload: AlertEvent | BlockEvent }) => onDelivery(e),
  )
  const onWebhookDelivered = safely((e: WebhookDelivery) => onDelivery({ ...e, error: undefined }))

  emitter.on('alert', onAlert)
  emitter.on('block', onBlock)
  // Every 429 is a throttle event: listened to only when some limit is a budget.
  if (options.isBudget !== undefined) emitter.on('throttle', onThrottle)
  emitter.on('webhookError', onWebhookError)
  emitter.on('webhookDelivered', onWebhookDelivered)
  return () => {
    emitter.off('alert', onAlert)
    emitter.off('block', onBlock)
    emitter.off('throttle', onThrottle)
    emitter.off('webhookError', onWebhookError)
    emitter.off('webhookDelivered', onWebhookDelivered)
  }
}

/** A webhook's result as a feed event: where it went (the origin only), how it ended, what it carried. */
function webhookEvent(d: WebhookDelivery, published: WeakMap<object, string>): AdminEventInput {
  const target = originOf(d.url)
  const about = d.payload?.event === 'sluice.block' ? 'block' : 'alert'
  const subject = typeof d.payload?.subject === 'string' ? d.payload.subject : null
  const ref = d.payload !== null && typeof d.payload === 'object' ? (published.get(d.payload) ?? null) : null
  const failed = d.error !== undefined
  const attempts = `${d.attempts} attempt${d.attempts === 1 ? '' : 's'}`
  return {
    type: 'webhook',
    severity: failed ? 'warning' : 'info',
    subject,
    tier: typeof d.payload?.tier === 'string' ? d.payload.tier : null,
    message: failed
      ? `webhook ${target} did not take the ${about} for ${subject} after ${attempts}: ${scrubUrls(d.error!)}`
      : `webhook ${target} took the ${about} for ${subject} (${attempts})`,
    data: {
      status: failed ? 'failed' : 'delivered',
      target,
      attempts: d.attempts,
      error: failed ? scrubUrls(d.error!) : null,
      about,
      ref,
    },
  }
}

/** A webhook URL may carry a secret in its path or query (Slack's do): only its origin is shown. */
function originOf(url: string): string {
  try {
    return new URL(url).origin
  } catch {
    return '(an invalid URL)'
  }
}

function scrubUrls(text: string): string {
  return text.replace(/\b[a-z][a-z0-9+.-]*:\/\/[^\s"'<>]+/gi, (u) => originOf(u)).slice(0, 300)
}

/** 4m 20s, 1h 5m, 350ms: the two largest units, for a sentence. */
export function forPeople(ms: number): string {
  if (!Number.isFinite(ms)) return 'ever'
  const whole = Math.max(0, Math.round(ms))
  if (whole < 1000) return `${whole}ms`
  const units: [string, number][] = [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ]
  const parts: string[] = []
  let rest = whole
  for (const [unit, size] of units) {
    const n = Math.floor(rest / size)
    if (n > 0 || parts.length > 0) parts.push(`${n}${unit}`)
    rest -= n * size
    if (parts.length === 2) break
  }
  return parts.filter((p, i) => i === 0 || !p.startsWith('0')).join(' ')
}

function timeOf(iso: string, clock: () => number): number {
  const ms = Date.parse(iso)
  return Number.isSafeInteger(ms) && ms >= 0 ? ms : clock()
}

/** What connectStoreGuard needs: a GuardedStore fits. */
export interface ObservableStore {
  observe(observer: GuardObserver): () => void
  health(): StoreHealth
}

/** The store going down (its outage policy answers) and coming back, into the feed. */
export function connectStoreGuard(
  feed: AdminEventFeed,
  guard: ObservableStore,
  options: { name?: string; onError?: (error: unknown) => void } = {},
): () => void {
  const name = options.name ?? 'the store'
  let downSince: number | undefined
  return guard.observe({
    state(state: BreakerState) {
      try {
        const health = guard.health()
        if (state === 'down') {
          downSince = health.since
          const why = health.lastError === undefined ? '' : `: ${health.lastError.slice(0, 200)}`
          feed.publish({
            type: 'store',
            severity: 'critical',
            message: `${name} is unavailable; each tier's outage policy answers${why}`,
            data: { state, since: new Date(health.since).toISOString(), lastError: health.lastError ?? null },
          })
        } else {
          const after =
            downSince === undefined ? '' : ` after ${forPeople(Math.max(0, health.since - downSince))}`
          downSince = undefined
          feed.publish({
            type: 'store',
            severity: 'info',
            message: `${name} is available again${after}`,
            data: { state, since: new Date(health.since).toISOString(), lastError: null },
          })
        }
      } catch (error) {
        options.onError?.(error)
      }
    },
  })
}
