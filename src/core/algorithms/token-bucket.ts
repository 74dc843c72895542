import type { z } from 'zod'
import { requirePositiveFinite } from '../errors.js'
import { gcraCheck, gcraCheckPacked, gcraForce, gcraRefund } from '../gcra.js'
import { optionsOf, unitOf } from './options.js'
import type { Algorithm, ConfigKit, Unit } from './types.js'

export interface TokenBucketLimit {
  kind: 'tokenBucket'
  unit: Unit
  capacity: number
  refillPerSecond: number
  /** Milliseconds to refill one unit. */
  intervalMs: number
}

/** Token bucket: up to `capacity` at once, refilled continuously at `refillPerSecond`. */
export function tokenBucket(options: {
  capacity: number
  refillPerSecond: number
  unit?: Unit
}): TokenBucketLimit {
  const o = optionsOf(options, 'tokenBucket()')
  const capacity = requirePositiveFinite(o.capacity, 'tokenBucket().capacity')
  const refillPerSecond = requirePositiveFinite(o.refillPerSecond, 'tokenBucket().refillPerSecond')
  return {
    kind: 'tokenBucket',
    unit: unitOf(o.unit, 'requests', 'tokenBucket()'),
    capacity,
    refillPerSecond,
    intervalMs: 1000 / refillPerSecond,
  }
}

const configSchema = ({ z, unit, positive, duration }: ConfigKit) =>
  z
    .strictObject({
      kind: z.literal('tokenBucket'),
      unit,
      capacity: positive,
      /** Units added back per second… */
      refillPerSecond: positive.optional(),
      /** …or the time to refill from empty to full (e.g. 1h for "capacity per hour"). */
      per: duration.optional(),
    })
    .refine((l) => (l.refillPerSecond === undefined) !== (l.per === undefined), {
      message: 'a tokenBucket needs exactly one of refillPerSecond or per',
    })

/** The state is one number, the theoretical arrival time (core/gcra.ts); 0 stands for full. */
export const tokenBucketAlgorithm: Algorithm<
  TokenBucketLimit,
  number,
  z.output<ReturnType<typeof configSchema>>
> = {
  kind: 'tokenBucket',
  normalize: (d) => tokenBucket(d as never),
  capacity: (d) => d.capacity,
  windowSeconds: (d) => d.capacity / d.refillPerSecond,
  scale: (d, n) => ({
    ...d,
    capacity: d.capacity / n,
    refillPerSecond: d.refillPerSecond / n,
    intervalMs: d.intervalMs * n,
  }),
  refill: 'continuous',
  inFlight: false,
  needsOpId: false,
  check: (tat, now, cost, d) => gcraCheck(tat, now, cost, d),
  checkPacked: gcraCheckPacked,
  adjust: (tat, now, delta, d) =>
    delta >= 0 ? gcraForce(tat, now, delta, d) : gcraRefund(tat, now, -delta, d),
  packed: {
    width: 1,
    plain: true,
    read: (a, at) => (a[at] === 0 ? undefined : a[at]),
    write: (a, at, tat) => {
      a[at] = tat ?? 0
    },
  },
  lua: { file: 'token-bucket.lua', params: (d) => [d.capacity, d.intervalMs] },
  config: {
    schema: configSchema,
    toLimit: (c) =>
      tokenBucket({
        capacity: c.capacity,
        refillPerSecond: c.refillPerSecond ?? c.capacity / (c.per! / 1000),
        unit: c.unit ?? 'requests',
      }),
  },
  sample: (n) => tokenBucket({ capacity: n, refillPerSecond: 1e-6 }),
}
