import type { z } from 'zod'
import { describe, SluiceInputError } from '../errors.js'
import {
  type SlidingWindowState,
  slidingWindowCheck,
  slidingWindowCheckPacked,
  slidingWindowForce,
  slidingWindowRefund,
} from '../sliding-window.js'
import { optionsOf, windowOptions } from './options.js'
import type { SlidingLogLimit } from './sliding-log.js'
import type { Algorithm, ConfigKit, Unit } from './types.js'

export interface SlidingWindowLimit {
  kind: 'slidingWindow'
  unit: Unit
  limit: number
  windowMs: number
}

/**
 * At most `limit` in any window of `windowMs`. By default the two-window weighted counter (O(1)
 * memory); `exact: true` keeps a log of every charge instead (see slidingLog).
 */
export function slidingWindow(options: {
  limit: number
  windowMs: number
  unit?: Unit
  exact?: boolean
}): SlidingWindowLimit | SlidingLogLimit {
  const exact = optionsOf(options, 'slidingWindow()').exact
  if (exact !== undefined && typeof exact !== 'boolean') {
    throw new SluiceInputError(`slidingWindow().exact must be true or false, got ${describe(exact)}`)
  }
  return { kind: exact ? 'slidingLog' : 'slidingWindow', ...windowOptions(options, 'slidingWindow()') }
}

const configSchema = ({ z, unit, positive, duration }: ConfigKit) =>
  z.strictObject({
    kind: z.literal('slidingWindow'),
    unit,
    limit: positive,
    window: duration,
    exact: z.boolean().optional(),
  })

export const slidingWindowAlgorithm: Algorithm<
  SlidingWindowLimit,
  SlidingWindowState,
  z.output<ReturnType<typeof configSchema>>
> = {
  kind: 'slidingWindow',
  // A hand-made { kind: 'slidingWindow', exact: true } becomes a sliding log, as from the factory.
  normalize: (d) => slidingWindow(d as never) as SlidingWindowLimit,
  capacity: (d) => d.limit,
  windowSeconds: (d) => d.windowMs / 1000,
  scale: (d, n) => ({ ...d, limit: d.limit / n }),
  refill: 'sliding',
  inFlight: false,
  needsOpId: false,
  check: (s, now, cost, d) => slidingWindowCheck(s, now, cost, d),
  checkPacked: slidingWindowCheckPacked,
  adjust: (s, now, delta, d, ctx) =>
    delta >= 0 ? slidingWindowForce(s, now, delta, d) : slidingWindowRefund(s, now, -delta, ctx.chargedAt, d),
  packed: {
    width: 3,
    read: (a, at) =>
      a[at] === 0 && a[at + 1] === 0 && a[at + 2] === 0
        ? undefined
        : { start: a[at]!, curr: a[at + 1]!, prev: a[at + 2]! },
    // One test of `s`, not an optional chain per number (MemoryStore calls this on every charge).
    write: (a, at, s) => {
      if (s === undefined) {
        a[at] = a[at + 1] = a[at + 2] = 0
      } else {
        a[at] = s.start
        a[at + 1] = s.curr
        a[at + 2] = s.prev
      }
    },
  },
  lua: { file: 'sliding-window.lua', params: (d) => [d.limit, d.windowMs] },
  config: {
    schema: configSchema,
    // `exact: true` makes a sliding log (the factory decides).
    toLimit: (c) =>
      slidingWindow({
        limit: c.limit,
        windowMs: c.window,
        unit: c.unit ?? 'requests',
        exact: c.exact ?? false,
      }) as SlidingWindowLimit,
  },
  sample: (n) => slidingWindow({ limit: n, windowMs: 3_600_000 }) as SlidingWindowLimit,
}
