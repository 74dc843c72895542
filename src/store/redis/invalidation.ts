import { randomBytes } from 'node:crypto'
import type { Cluster, Redis } from 'ioredis'
import { describe, requirePositiveInteger, SluiceInputError } from '../../core/errors.js'
import type { BlockedKeyCache, InvalidationBus } from '../blocked-cache.js'

export interface RedisInvalidationBusOptions {
  /** The cache to keep in step with the other instances. */
  cache: BlockedKeyCache
  /** Publishes invalidations (usually the store's client). */
  client: Redis | Cluster
  /** A connection in subscriber mode (default: a duplicate of `client`, closed with the bus). */
  subscriber?: Redis | Cluster
  /** Channel shared by the instances (default "sluice:invalidate"). */
  channel?: string
  /** Invalidations are gathered for this long and published in one message (default 5 ms). */
  flushMs?: number
}

/**
 * Spreads BlockedKeyCache invalidations over Redis pub/sub: when an instance refunds, resets or
 * unblocks a subject, the others forget their cached denials of it within a few milliseconds.
 * Pub/sub delivers at most once; a message lost while a connection is down leaves the cache's
 * `maxAgeMs` as the staleness bound.
 */
export class RedisInvalidationBus implements InvalidationBus {
  readonly channel: string
  readonly flushMs: number
  private readonly id = randomBytes(6).toString('base64url')
  private readonly cache: BlockedKeyCache
  private readonly client: Redis | Cluster
  private readonly subscriber: Redis | Cluster
  private readonly ownsSubscriber: boolean
  private pending = new Set<string>()
  private timer: NodeJS.Timeout | undefined
  /** Messages received from other instances, and keys they invalidated. */
  received = 0

  constructor(options: RedisInvalidationBusOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new SluiceInputError(`RedisInvalidationBus needs { cache, client }, got ${describe(options)}`)
    }
    this.cache = options.cache
    this.client = options.client
    this.channel = options.channel ?? 'sluice:invalidate'
    if (typeof this.channel !== 'string' || this.channel === '') {
      throw new SluiceInputError(`channel must be a non-empty string, got ${describe(this.channel)}`)
    }
    this.flushMs = options.flushMs === undefined ? 5 : requirePositiveInteger(options.flushMs, 'flushMs')
    this.ownsSubscriber = options.subscriber === undefined
    this.subscriber = options.subscriber ?? this.client.duplicate()
    if (this.ownsSubscriber) this.subscriber.on('error', () => {}) // reconnects by itself
    this.subscriber.on('message', (channel: string, message: string) => {
      if (channel === this.channel) this.onMessage(message)
    })
    this.cache.attach(this)
  }

  /** Subscribes; resolves once invalidations from other instances arrive (rejects after `timeoutMs`). */
  async start(timeoutMs = 10_000): Promise<void> {
    const sub = this.subscriber
    if (sub.status === 'wait') sub.connect().catch(() => {})
    if (sub.status !== 'ready') {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          sub.off('ready', onReady)
          reject(new Error(`invalidation subscriber not ready after ${timeoutMs} ms (${sub.status})`))
        }, timeoutMs)
        const onReady = () => {
          clearTimeout(timer)
          resolve()
        }
        sub.once('ready', onReady)
      })
    }
    // After a reconnect ioredis subscribes again by itself (autoResubscribe).
    await sub.subscribe(this.channel)
  }

  publish(key: string): void {
    this.pending.add(key)
    if (this.timer === undefined) {
      this.timer = setTimeout(() => this.flush(), this.flushMs)
      this.timer.unref()
    }
  }

  async close(): Promise<void> {
    clearTimeout(this.timer)
    this.timer = undefined
    this.flush()
    if (this.ownsSubscriber) this.subscriber.disconnect()
    else await this.subscriber.unsubscribe(this.channel).catch(() => {})
  }

  private flush(): void {
    this.timer = undefined
    if (this.pending.size === 0) return
    const keys = [...this.pending]
    this.pending = new Set()
    // Best effort: when Redis is down the message is lost and maxAgeMs bounds the staleness.
    this.client.publish(this.channel, JSON.stringify({ from: this.id, keys })).catch(() => {})
  }

  private onMessage(message: string): void {
    let parsed: { from?: unknown; keys?: unknown }
    try {
      parsed = JSON.parse(message)
    } catch {
      return
    }
    if (parsed.from === this.id || !Array.isArray(parsed.keys)) return
    this.received++
    for (const key of parsed.keys) if (typeof key === 'string') this.cache.invalidate(key)
  }
}
