import { algorithmOf, capacityOf, type LimitDefinition } from '../core/limits.js'
import type { StoreOp, StoreResult } from './types.js'

/** What the outage policies answer with, when the store cannot. */

/** A limit with its capacity (and refill) divided among `instances`. */
export function scaleLimit(limit: LimitDefinition, instances: number): LimitDefinition {
  return algorithmOf(limit.kind).scale(limit, instances)
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
    ...(op.linked === undefined ? {} : { linked: op.linked.map(openResult) }),
  }
}
