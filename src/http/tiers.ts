import { describe, SluiceInputError } from '../core/errors.js'
import { type LimitDefinition, slidingLog, slidingWindow, tokenBucket } from '../core/limits.js'
import type { BlockOptions } from '../limiter.js'
import type { Store } from '../store/types.js'
import { resolveWait, type WaitOptions } from '../waiting.js'

/** Who a tier counts: each IP (or IPv6 /64), each authenticated user, or each API key. */
export type TierScope = 'ip' | 'user' | 'key'

/** A tier is plain config: whom it counts and the limits each of them gets. */
export interface Tier {
  scope: TierScope
  limits: Record<string, LimitDefinition>
  /** Decide and count as usual but let every request through (overrides the global `shadow`). */
  shadow?: boolean
  /** Block repeat offenders of this tier (overrides the global `block`; false turns it off). */
  block?: BlockOptions | boolean
  /** Where this tier's counts live (default: the core's `store`), e.g. a store with its own outage policy. */
  store?: Store
  /**
   * Wait in fair order instead of a 429 (docs/queueing.md): a refusal by a rate limit that would
   * pass within `maxWaitMs` waits for it. Off unless given; `weight` is the tier's share when
   * tiers wait on one capacity.
   */
  queue?: TierQueue
}

export type TierQueue = Pick<
  WaitOptions,
  'maxWaitMs' | 'maxQueued' | 'maxQueuedPerFlow' | 'weight' | 'leaseMs' | 'pollMs'
> & {
  /** Honour the request's priority header (x-sluice-priority, docs/queueing.md); ignored otherwise. */
  priorities?: boolean
}

const HOUR_MS = 3_600_000

/**
 * Requests and tokens per rolling hour, exactly: sliding logs, one entry per call (two when a call
 * settles above its estimate). For tiers whose hourly requests are few, so a subject's log stays
 * small: it is read whole on every call.
 */
function exactHour(requests: number, tokens: number): Record<string, LimitDefinition> {
  return {
    hourly: slidingLog({ limit: requests, windowMs: HOUR_MS }),
    tokens: slidingLog({ limit: tokens, windowMs: HOUR_MS, unit: 'tokens' }),
  }
}

/**
 * Requests and tokens per hour in constant memory, for tiers with thousands of calls an hour: the
 * two-window counter (never more than `requests` in a clock hour, and fewer than twice that in any
 * rolling hour) and a token bucket refilled over the hour (at most `tokens` at once, and fewer
 * than twice that in any rolling hour). docs/http.md gives the bounds and why.
 */
function approximateHour(requests: number, tokens: number): Record<string, LimitDefinition> {
  return {
    hourly: slidingWindow({ limit: requests, windowMs: HOUR_MS }),
    tokens: tokenBucket({ capacity: tokens, refillPerSecond: tokens / 3600, unit: 'tokens' }),
  }
}

/** The default tiers from the product brief (the table in docs/http.md). */
export function defaultTiers(): Record<string, Tier> {
  return {
    anonymous: {
      scope: 'ip',
      limits: { ...exactHour(20, 10_000), burst: tokenBucket({ capacity: 20, refillPerSecond: 2 }) },
    },
    authenticated: {
      scope: 'user',
      limits: { ...exactHour(200, 100_000), burst: tokenBucket({ capacity: 100, refillPerSecond: 10 }) },
    },
    premium: { scope: 'user', limits: approximateHour(2_000, 1_000_000) },
    service: {
      scope: 'key',
      limits: {
        ...approximateHour(10_000, 5_000_000),
        burst: tokenBucket({ capacity: 1_000, refillPerSecond: 100 }),
      },
    },
  }
}

/** Tier names: used in store keys and logs. Names starting with "_" are kept for sluice's own limits. */
const TIER_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/
const SCOPES: readonly TierScope[] = ['ip', 'user', 'key']

/**
 * Checks the shape of a tier map (names, scopes, flags); the limits themselves are checked when
 * the Limiter for the tier is made. Errors name the bad path, e.g. `tiers.gold.scope`.
 */
export function validateTiers(tiers: unknown, what = 'tiers'): Record<string, Tier> {
  if (typeof tiers !== 'object' || tiers === null || Array.isArray(tiers)) {
    throw new SluiceInputError(`${what} must map tier names to { scope, limits }, got ${describe(tiers)}`)
  }
  const entries = Object.entries(tiers as Record<string, unknown>)
  if (entries.length === 0) throw new SluiceInputError(`${what} must name at least one tier`)
  for (const [name, tier] of entries) {
    const path = `${what}.${name}`
    if (!TIER_NAME.test(name)) {
      throw new SluiceInputError(
        `tier name ${describe(name)} must be 1-64 letters, digits, "_", "-" or "." and not start with "_", "-" or "."`,
      )
    }
    if (typeof tier !== 'object' || tier === null) {
      throw new SluiceInputError(`${path} must be { scope, limits }, got ${describe(tier)}`)
    }
    const t = tier as Partial<Tier>
    if (!SCOPES.includes(t.scope as TierScope)) {
      throw new SluiceInputError(`${path}.scope must be "ip", "user" or "key", got ${describe(t.scope)}`)
    }
    if (typeof t.limits !== 'object' || t.limits === null || Object.keys(t.limits).length === 0) {
      throw new SluiceInputError(`${path}.limits must name at least one limit, got ${describe(t.limits)}`)
    }
    if (t.store !== undefined && typeof (t.store as Partial<Store>).execute !== 'function') {
      throw new SluiceInputError(
        `${path}.store must be a MemoryStore, RedisStore or other Store, got ${describe(t.store)}`,
      )
    }
    if (t.queue !== undefined) {
      const priorities = (t.queue as Partial<TierQueue> | null)?.priorities
      if (priorities !== undefined && typeof priorities !== 'boolean') {
        throw new SluiceInputError(
          `${path}.queue.priorities must be true or false, got ${describe(priorities)}`,
        )
      }
      try {
        resolveWait(t.queue)
      } catch (error) {
        if (error instanceof SluiceInputError) throw new SluiceInputError(`${path}.queue: ${error.message}`)
        throw error
      }
    }
    if (t.shadow !== undefined && typeof t.shadow !== 'boolean') {
      throw new SluiceInputError(`${path}.shadow must be true or false, got ${describe(t.shadow)}`)
    }
  }
  return tiers as Record<string, Tier>
}
