/**
 * The limiters each workload compares, built the same way in the bench process and in child
 * processes. Every limit is set far above what a run can spend, so that every decision is an
 * admission and sluice and the peers do the same work (the blocked-key rows are the exception).
 * The memory limiters and the calls live in memory-contenders.ts; the Redis peers here.
 */
import type { Redis } from 'ioredis'
import { RateLimiterRedis } from 'rate-limiter-flexible'
import { MemoryStore, RedisStore } from '../src/index.js'

export function peerRedisOneLimit(client: Redis): RateLimiterRedis {
  return new RateLimiterRedis({ storeClient: client, points: 1e9, duration: 3600, keyPrefix: 'rlf' })
}

export function peerRedisPolicy(client: Redis): [RateLimiterRedis, RateLimiterRedis, RateLimiterRedis] {
  return [
    new RateLimiterRedis({ storeClient: client, points: 1e9, duration: 3600, keyPrefix: 'rlf-hourly' }),
    new RateLimiterRedis({ storeClient: client, points: 1e12, duration: 3600, keyPrefix: 'rlf-tokens' }),
    new RateLimiterRedis({ storeClient: client, points: 1e9, duration: 1, keyPrefix: 'rlf-burst' }),
  ]
}

export * from './memory-contenders.js'
export { MemoryStore, RedisStore }
