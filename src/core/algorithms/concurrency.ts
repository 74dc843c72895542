import type { z } from 'zod'
import { type ConcurrencyState, concurrencyCheck, concurrencyRelease } from '../concurrency.js'
import { requirePositiveInteger } from '../errors.js'
import { optionsOf } from './options.js'
import type { Algorithm, ConfigKit, Unit } from './types.js'

export interface ConcurrencyLimit {
  kind: 'concurrency'
  unit: Unit
  limit: number
  leaseMs: number
}

/** At most `limit` calls in flight; each lease expires after `leaseMs` if never released. */
export function concurrency(options: { limit: number; leaseMs?: number }): ConcurrencyLimit {
  const o = optionsOf(options, 'concurrency()')
  return {
    kind: 'concurrency',
    unit: 'concurrent',
    limit: requirePositiveInteger(o.limit, 'concurrency().limit'),
    leaseMs: o.leaseMs === undefined ? 120_000 : requirePositiveInteger(o.leaseMs, 'concurrency().leaseMs'),
  }
}

/** In sluice.yaml a lease outlives any sane call; it only matters when an instance dies holding one. */
export const CONFIG_LEASE_MS = 10 * 60_000

const configSchema = ({ z, positiveInt, duration }: ConfigKit) =>
  z.strictObject({ kind: z.literal('concurrency'), limit: positiveInt, lease: duration.optional() })

/** Leases (id → expiry) under the limit's own key (a sorted set in Redis). */
export const concurrencyAlgorithm: Algorithm<
  ConcurrencyLimit,
  ConcurrencyState,
  z.output<ReturnType<typeof configSchema>>
> = {
  kind: 'concurrency',
  normalize: (d) => concurrency(d as never),
  capacity: (d) => d.limit,
  windowSeconds: (d) => d.leaseMs / 1000,
  scale: (d, n) => ({ ...d, limit: Math.max(1, Math.floor(d.limit / n)) }),
  refill: 'release',
  inFlight: true,
  needsOpId: true,
  check: (s, now, slots, d, ctx) => concurrencyCheck(s, now, slots, ctx.hold ? ctx.id : undefined, d),
  adjust: (s, now, _delta, d, ctx) =>
    ctx.release ? concurrencyRelease(s, now, ctx.id, d) : concurrencyCheck(s, now, 0, undefined, d),
  packed: undefined,
  lua: { file: 'concurrency.lua', params: (d) => [d.limit, d.leaseMs] },
  config: {
    schema: configSchema,
    toLimit: (c) => concurrency({ limit: c.limit, leaseMs: c.lease ?? CONFIG_LEASE_MS }),
  },
  sample: null,
}
