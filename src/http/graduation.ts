/**
 * The graduated response: a decision read as a level (ok, alert, warn, throttle, block, deny) and
 * acted on — `alert` events (logged, posted to the webhook) when a limit crosses `alertAt`,
 * `block` when repeated 429s started a block, `throttle` for a denial, `shadow` when shadow mode
 * lets one through.
 */
import type { EventEmitter } from 'node:events'
import type { Decision, LimitStatus } from '../limiter.js'
import {
  type AlertEvent,
  alertEventOf,
  type BlockEvent,
  blockEventOf,
  type SluiceEvents,
  type SluiceLogger,
} from './events.js'
import { formatDuration } from './headers.js'
import type { Identity } from './identity.js'
import { warningFor } from './responses.js'
import { advertisedRetryMs } from './retry.js'
import { type ResolvedWebhook, WebhookSender } from './webhook.js'

/**
 * Graduated response, in rising order: nothing to report; this request crossed the alert share
 * of a limit; a limit is nearly spent (below `warnAt` remaining); refused with 429; refused
 * because blocked; refused with 403 (deny list).
 */
export type Level = 'ok' | 'alert' | 'warn' | 'throttle' | 'block' | 'deny'

/** The graduated-response reading of one decision. */
export interface Graduation {
  level: Level
  /** A human sentence for `X-RateLimit-Warning` when a limit is nearly spent. */
  warning: string | undefined
  /** Limits this request moved across `alertAt` (each reported once per window across instances). */
  alerts: LimitStatus[]
}

export interface GraduatorOptions {
  events: EventEmitter<SluiceEvents>
  logger: SluiceLogger | undefined
  webhook: ResolvedWebhook | undefined
  warnAt: number
  alertAt: number | undefined
  concurrencyRetryCapMs: number
  isShadow(tier: string): boolean
}

export class Graduator {
  private readonly webhook: WebhookSender<AlertEvent | BlockEvent> | undefined

  constructor(private readonly o: GraduatorOptions) {
    const hook = o.webhook
    this.webhook =
      hook &&
      new WebhookSender(hook, (attempts, error, payload) => {
        o.events.emit('webhookError', { url: hook.url, attempts, error, payload })
        o.logger?.warn({ url: hook.url, attempts, error }, 'sluice webhook delivery failed')
      })
  }

  /**
   * Reads a decision as a level and acts on it: emits `alert` (and logs it, and posts it to the
   * webhook) for each limit the decision crossed `alertAt` on — the store reports each crossing
   * once per subject, limit and window across instances; emits `block` when this decision started
   * a block (one event across instances), `throttle` for a denial, `shadow` when shadow mode lets
   * a denial through. Call it once per charging decision.
   */
  graduate(identity: Identity, decision: Decision): Graduation {
    const g: Graduation = { level: 'ok', warning: undefined, alerts: decision.alerts }
    this.graduateInto(g, identity, decision)
    return g
  }

  /** graduate(), its reading written into `into` (a request's state): no object per request. */
  graduateInto(into: Graduation, identity: Identity, decision: Decision): void {
    const alerts = decision.alerts
    into.alerts = alerts
    // Indexed: a for-of over the (frozen) shared empty list called the array iterator's builtin.
    for (let i = 0; i < alerts.length; i++) this.reportAlert(identity, decision, alerts[i]!)
    if (!decision.allowed) {
      const { events, logger } = this.o
      const retryAfterMs = advertisedRetryMs(decision, this.o.concurrencyRetryCapMs)
      if (decision.blockedNow) this.reportBlock(identity, decision)
      if (this.o.isShadow(identity.tier)) {
        events.emit('shadow', {
          subject: identity.subject,
          tier: identity.tier,
          status: 429,
          deniedBy: decision.deniedBy,
          retryAfterMs,
        })
        logger?.info(
          { subject: identity.subject, tier: identity.tier, deniedBy: decision.deniedBy, retryAfterMs },
          'sluice shadow mode: would refuse with 429',
        )
      } else {
        events.emit('throttle', {
          subject: identity.subject,
          tier: identity.tier,
          deniedBy: decision.deniedBy,
          retryAfterMs,
          blocked: decision.blocked,
        })
      }
      into.level = decision.blocked ? 'block' : 'throttle'
      into.warning = undefined
      return
    }
    const warning = warningFor(decision, this.o.warnAt)
    into.level = warning !== undefined ? 'warn' : alerts.length > 0 ? 'alert' : 'ok'
    into.warning = warning
  }

  /** Waits for webhook deliveries in progress. */
  flush(): Promise<void> {
    return this.webhook?.flush() ?? Promise.resolve()
  }

  private reportAlert(identity: Identity, decision: Decision, limit: LimitStatus): void {
    const event = alertEventOf(identity, decision, limit, this.o.alertAt ?? 0)
    this.o.events.emit('alert', event)
    this.o.logger?.warn(
      { subject: event.subject, tier: event.tier, limit: limit.name, used: event.used },
      `sluice alert: ${event.subject} used ${Math.round(event.used * 100)}% of limit "${limit.name}"`,
    )
    const webhook = this.webhook
    if (webhook?.options.events.has('alert')) webhook.send(event)
  }

  private reportBlock(identity: Identity, decision: Decision): void {
    const event = blockEventOf(identity, decision)
    this.o.events.emit('block', event)
    this.o.logger?.warn(
      { subject: event.subject, tier: event.tier, retryAfterMs: event.retryAfterMs },
      `sluice block: ${event.subject} blocked for ${formatDuration(event.retryAfterMs)} after repeated 429s`,
    )
    const webhook = this.webhook
    if (webhook?.options.events.has('block')) webhook.send(event)
  }
}
