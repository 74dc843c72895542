import { CONFIG_LEASE_MS } from '../core/algorithms/concurrency.js'
import { concurrency, type LimitDefinition, limitFromConfig } from '../core/limits.js'
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
const DEFAULT_LEASE_MS = CONFIG_LEASE_MS

export const DEFAULT_TIER_NAMES: readonly string[] = Object.keys(defaultTiers())

export { limitFromConfig }

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
