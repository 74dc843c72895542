import { type LimitDefinition, slidingWindow, tokenBucket } from '../core/limits.js'

/** Who a tier counts: each IP (or IPv6 /64), each authenticated user, or each API key. */
export type TierScope = 'ip' | 'user' | 'key'

/** A tier is plain config: whom it counts and the limits each of them gets. */
export interface Tier {
  scope: TierScope
  limits: Record<string, LimitDefinition>
}

const HOUR_MS = 3_600_000

function hourly(requests: number, tokens: number): Record<string, LimitDefinition> {
  return {
    hourly: slidingWindow({ limit: requests, windowMs: HOUR_MS }),
    tokens: tokenBucket({ capacity: tokens, refillPerSecond: tokens / 3600, unit: 'tokens' }),
  }
}

/** The default tiers from the product brief (DESIGN.md). */
export function defaultTiers(): Record<string, Tier> {
  return {
    anonymous: {
      scope: 'ip',
      limits: { ...hourly(20, 10_000), burst: tokenBucket({ capacity: 20, refillPerSecond: 2 }) },
    },
    authenticated: {
      scope: 'user',
      limits: { ...hourly(200, 100_000), burst: tokenBucket({ capacity: 100, refillPerSecond: 10 }) },
    },
    premium: { scope: 'user', limits: hourly(2_000, 1_000_000) },
    service: {
      scope: 'key',
      limits: { ...hourly(10_000, 5_000_000), burst: tokenBucket({ capacity: 1_000, refillPerSecond: 100 }) },
    },
  }
}
