import {
  concurrency,
  fixedWindow,
  type LimitDefinition,
  slidingLog,
  slidingWindow,
  tokenBucket,
} from '../core/limits.js'
import { defaultTiers, type Tier } from '../http/tiers.js'
import type { LimitConfig, TierConfig } from './config/schema.js'

/** In-flight calls per subject the gateway adds to each default tier; streams hold theirs until they end. */
export const DEFAULT_CONCURRENCY: Readonly<Record<string, number>> = {
  anonymous: 4,
  authenticated: 10,
  premium: 20,
  service: 100,
}

/** A lease outlives any sane call; it only matters when an instance dies holding one. */
const DEFAULT_LEASE_MS = 10 * 60_000

export const DEFAULT_TIER_NAMES: readonly string[] = Object.keys(defaultTiers())

/** Builds a LimitDefinition from its YAML form with the core factories (which validate again). */
export function limitFromConfig(config: LimitConfig): LimitDefinition {
  switch (config.kind) {
    case 'tokenBucket':
      return tokenBucket({
        capacity: config.capacity,
        refillPerSecond: config.refillPerSecond ?? config.capacity / (config.per! / 1000),
        unit: config.unit ?? 'requests',
      })
    case 'fixedWindow':
      return fixedWindow({ limit: config.limit, windowMs: config.window, unit: config.unit ?? 'requests' })
    case 'slidingWindow':
      return slidingWindow({
        limit: config.limit,
        windowMs: config.window,
        unit: config.unit ?? 'requests',
        exact: config.exact ?? false,
      })
    case 'slidingLog':
      return slidingLog({ limit: config.limit, windowMs: config.window, unit: config.unit ?? 'requests' })
    case 'concurrency':
      return concurrency({ limit: config.limit, leaseMs: config.lease ?? DEFAULT_LEASE_MS })
  }
}

/** Applies a limits map from config over existing limits: by name, `null` removes. */
export function mergeLimits(
  base: Record<string, LimitDefinition>,
  overrides: Record<string, LimitConfig | null> | undefined,
): Record<string, LimitDefinition> {
  const limits = { ...base }
  for (const [name, limit] of Object.entries(overrides ?? {})) {
    if (limit === null) delete limits[name]
    else limits[name] = limitFromConfig(limit)
  }
  return limits
}

/**
 * The gateway's tiers: the default tiers (plus an in-flight limit each), with the config's tiers merged
 * over them limit by limit, and new tiers added.
 */
export function gatewayTiers(config: Record<string, TierConfig>): Record<string, Tier> {
  const tiers: Record<string, Tier> = {}
  for (const [name, tier] of Object.entries(defaultTiers())) {
    const inflight = DEFAULT_CONCURRENCY[name]
    tiers[name] = {
      scope: tier.scope,
      limits:
        inflight === undefined
          ? tier.limits
          : { ...tier.limits, inflight: concurrency({ limit: inflight, leaseMs: DEFAULT_LEASE_MS }) },
    }
  }
  for (const [name, tier] of Object.entries(config)) {
    const base = tiers[name]
    tiers[name] = {
      scope: tier.scope ?? base?.scope ?? 'key',
      limits: mergeLimits(base?.limits ?? {}, tier.limits),
    }
  }
  return tiers
}

/** Tier names whose merged limits are empty (a Limiter needs at least one). */
export function emptyTiers(tiers: Record<string, Tier>): string[] {
  return Object.entries(tiers)
    .filter(([, t]) => Object.keys(t.limits).length === 0)
    .map(([n]) => n)
}
