import { capacityOf, type LimitDefinition } from '../core/limits.js'
import type { StoreOp, StoreResult } from './types.js'

/** What the outage policies answer with, when the store cannot. */

/** A limit with its capacity and refill divided among `instances`. */
export function scaleLimit(limit: LimitDefinition, instances: number): LimitDefinition {
  switch (limit.kind) {
    case 'tokenBucket':
      return {
        ...limit,
        capacity: limit.capacity / instances,
        refillPerSecond: limit.refillPerSecond / instances,
        intervalMs: limit.intervalMs * instances,
      }
    case 'concurrency':
      return { ...limit, limit: Math.max(1, Math.floor(limit.limit / instances)) }
    default:
      return { ...limit, limit: limit.limit / instances }
  }
}

/** What `open` answers: allowed, nothing checked, nothing charged. */
export function openResult(op: StoreOp): StoreResult {
  return {
    now: Date.now(),
    allowed: true,
    blockedMs: 0,
    blockedNow: false,
    limits: op.limits.map((l) => ({
      allowed: true,
      remaining: capacityOf(l),
      resetMs: 0,
      retryAfterMs: 0,
      alerted: false,
    })),
    fallback: 'open',
  }
}
