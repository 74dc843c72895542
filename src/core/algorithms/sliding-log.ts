import type { z } from 'zod'
import { type SlidingLogState, slidingLogCheck, slidingLogForce, slidingLogRefund } from '../sliding-log.js'
import { windowOptions } from './options.js'
import type { Algorithm, ConfigKit, Unit } from './types.js'

export interface SlidingLogLimit {
  kind: 'slidingLog'
  unit: Unit
  limit: number
  windowMs: number
}

/** Exact sliding window: one log entry per charge. */
export function slidingLog(options: { limit: number; windowMs: number; unit?: Unit }): SlidingLogLimit {
  return { kind: 'slidingLog', ...windowOptions(options, 'slidingLog()') }
}

const configSchema = ({ z, unit, positive, duration }: ConfigKit) =>
  z.strictObject({ kind: z.literal('slidingLog'), unit, limit: positive, window: duration })

/** A log entry per charge, under the limit's own key (a sorted set in Redis). */
export const slidingLogAlgorithm: Algorithm<
  SlidingLogLimit,
  SlidingLogState,
  z.output<ReturnType<typeof configSchema>>
> = {
  kind: 'slidingLog',
  normalize: (d) => slidingLog(d as never),
  capacity: (d) => d.limit,
  windowSeconds: (d) => d.windowMs / 1000,
  scale: (d, n) => ({ ...d, limit: d.limit / n }),
  refill: 'sliding',
  inFlight: false,
  needsOpId: true,
  check: (s, now, cost, d, ctx) => slidingLogCheck(s, now, cost, ctx.id, d),
  // A charge above the estimate is an entry of its own, named apart from the reservation's.
  adjust: (s, now, delta, d, ctx) =>
    delta >= 0
      ? slidingLogForce(s, now, delta, `${ctx.id}+`, d)
      : slidingLogRefund(s, now, -delta, ctx.id, d),
  packed: undefined,
  lua: { file: 'sliding-log.lua', params: (d) => [d.limit, d.windowMs] },
  config: {
    schema: configSchema,
    toLimit: (c) => slidingLog({ limit: c.limit, windowMs: c.window, unit: c.unit ?? 'requests' }),
  },
  sample: (n) => slidingLog({ limit: n, windowMs: 3_600_000 }),
}
