import { randomBytes } from 'node:crypto'
import { describe, requirePositiveInteger, SluiceInputError } from '../../core/errors.js'
import type { BlockedKeyCache, InvalidationBus } from '../blocked-cache.js'
import {
  isIORedis,
  isNodeRedis,
  type RedisClient,
  type RedisConnection,
  type Subscription,
} from './connection.js'
import { IORedisConnection } from './ioredis.js'
import { NodeRedisConnection } from './node-redis.js'

export interface RedisInvalidationBusOptions {
  /** The cache to keep in step with the other instances. */
  cache: BlockedKeyCache
  /** Publishes invalidations (usually the store's client: ioredis or node-redis, as RedisStore takes). */
  client: RedisClient
  /** A client of the same kind to subscribe with (default: a duplicate of `client`, closed with the bus). */
  subscriber?: RedisClient
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
  private readonly connection: RedisConnection
  private readonly subscriber: RedisClient | undefined
  private subscription: Subscription | undefined
  private starting: Promise<void> | undefined
  private pending = new Set<string>()
  private timer: NodeJS.Timeout | undefined
  /** Messages received from other instances, and keys they invalidated. */
  received = 0

  constructor(options: RedisInvalidationBusOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new SluiceInputError(`RedisInvalidationBus needs { cache, client }, got ${describe(options)}`)
    }
    this.cache = options.cache
    const client: unknown = options.client
    if (isIORedis(client)) this.connection = new IORedisConnection(client)
    else if (isNodeRedis(client)) this.connection = new NodeRedisConnection(client)
    else {
      throw new SluiceInputError(
        `RedisInvalidationBus client must be an ioredis or node-redis client, got ${describe(client)}`,
      )
    }
    this.channel = options.channel ?? 'sluice:invalidate'
    if (typeof this.channel !== 'string' || this.channel === '') {
      throw new SluiceInputError(`channel must be a non-empty string, got ${describe(this.channel)}`)
    }
    this.flushMs = options.flushMs === undefined ? 5 : requirePositiveInteger(options.flushMs, 'flushMs')
    this.subscriber = options.subscriber
    this.cache.attach(this)
  }

  /**
   * Subscribes; resolves once invalidations from other instances arrive (rejects after
   * `timeoutMs`, and may then be called again).
   */
  start(timeoutMs = 10_000): Promise<void> {
    if (this.subscription !== undefined) return Promise.resolve()
    this.starting ??= this.connection
      .subscribe(this.channel, (message) => this.onMessage(message), timeoutMs, this.subscriber)
      .then((subscription) => {
        this.subscription = subscription
      })
      .finally(() => {
        this.starting = undefined
      })
    return this.starting
  }

  publish(key: string): void {
    this.pending.add(key)
    if (this.timer === undefined) {
      this.timer = setTimeout(() => this.flush(), this.flushMs)
      this.timer.unref()
    }
  }

  async close(): Promise<void> {
    await this.starting?.catch(() => {})
    clearTimeout(this.timer)
    this.timer = undefined
    this.flush()
    const subscription = this.subscription
    this.subscription = undefined
    await subscription?.close()
  }

  private flush(): void {
    this.timer = undefined
    if (this.pending.size === 0) return
    const keys = [...this.pending]
    this.pending = new Set()
    // Best effort: when Redis is down the message is lost and maxAgeMs bounds the staleness.
    this.connection.publish(this.channel, JSON.stringify({ from: this.id, keys })).catch(() => {})
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
