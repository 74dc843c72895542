/**
 * The limiters each workload compares (bench/contenders.ts re-exports these beside the Redis
 * peers). Every limit is set far above what a run can spend, so that every decision is an
 * admission and sluice and the peers do the same work (the blocked-key rows are the exception).
 * The memory limiters and the calls every row makes import no Redis code, so
 * that scripts/decision-instructions.ts can bundle them alone (bench/workers/decision-loop.ts).
 */
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible'
import { slidingWindow, tokenBucket } from '../src/core/algorithms/index.js'
import type { Costs } from '../src/limiter.js'
import { Limiter } from '../src/limiter.js'
import type { Store } from '../src/store/types.js'
import type { Operation } from './harness/drive.js'

/** The subject of key index i, built once so that no contender pays for string building. */
export function subjects(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `user-${i}`)
}

const HOUR_MS = 3_600_000
const TOKENS_PER_CALL = 100

/** One limit: sluice's token bucket; rate-limiter-flexible's fixed window (its only algorithm). */
export function sluiceOneLimit(store: Store): Limiter {
  return new Limiter({
    store,
    policy: 'bench',
    limits: { rps: tokenBucket({ capacity: 1e9, refillPerSecond: 1 }) },
  })
}

/**
 * A policy shaped like the default "authenticated" tier (hourly requests as a sliding window, hourly
 * tokens and a short burst as token buckets), with limits raised so that nothing is denied.
 */
export function sluicePolicy(store: Store): Limiter {
  return new Limiter({
    store,
    policy: 'bench3',
    limits: {
      hourly: slidingWindow({ limit: 1e9, windowMs: HOUR_MS }),
      tokens: tokenBucket({ capacity: 1e12, refillPerSecond: 1, unit: 'tokens' }),
      burst: tokenBucket({ capacity: 1e9, refillPerSecond: 1 }),
    },
  })
}

export function sluiceOp(limiter: Limiter, subjectOf: string[], costs?: Costs): Operation {
  if (costs === undefined) return (k) => limiter.consume(subjectOf[k]!).then(allowedOf)
  return (k) => limiter.consume(subjectOf[k]!, costs).then(allowedOf)
}

export const POLICY_COSTS: Costs = { requests: 1, tokens: TOKENS_PER_CALL }

function allowedOf(d: { allowed: boolean }): boolean {
  return d.allowed
}

/** rate-limiter-flexible rejects with a RateLimiterRes when denied; anything else is a real error. */
function deniedOrThrow(reason: unknown): false {
  if (reason instanceof RateLimiterRes) return false
  throw reason
}

function yes(): true {
  return true
}

type Consumer = { consume(key: string, points?: number): Promise<unknown> }

export function peerOp(limiter: Consumer, subjectOf: string[]): Operation {
  return (k) => limiter.consume(subjectOf[k]!, 1).then(yes, deniedOrThrow)
}

/** Three limiters called one after the other, as a user of the peer would chain them. */
export function peerPolicyOp(limiters: [Consumer, Consumer, Consumer], subjectOf: string[]): Operation {
  const [hourly, tokens, burst] = limiters
  return async (k) => {
    const s = subjectOf[k]!
    try {
      await hourly.consume(s, 1)
      await tokens.consume(s, TOKENS_PER_CALL)
      await burst.consume(s, 1)
      return true
    } catch (reason) {
      return deniedOrThrow(reason)
    }
  }
}

export function peerMemoryOneLimit(): RateLimiterMemory {
  return new RateLimiterMemory({ points: 1e9, duration: 3600, keyPrefix: 'rlf' })
}

export function peerMemoryPolicy(): [RateLimiterMemory, RateLimiterMemory, RateLimiterMemory] {
  return [
    new RateLimiterMemory({ points: 1e9, duration: 3600, keyPrefix: 'rlf-hourly' }),
    new RateLimiterMemory({ points: 1e12, duration: 3600, keyPrefix: 'rlf-tokens' }),
    new RateLimiterMemory({ points: 1e9, duration: 1, keyPrefix: 'rlf-burst' }),
  ]
}
