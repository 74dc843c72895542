import type { z } from 'zod'
import {
  type FixedWindowState,
  fixedWindowCheck,
  fixedWindowCheckPacked,
  fixedWindowForce,
  fixedWindowRefund,
} from '../fixed-window.js'
import { windowOptions } from './options.js'
import type { Algorithm, ConfigKit, PackedState, Unit } from './types.js'

export interface FixedWindowLimit {
  kind: 'fixedWindow'
  unit: Unit
  limit: number
  windowMs: number
}

/** At most `limit` per window of `windowMs`, windows aligned to the epoch. */
export function fixedWindow(options: { limit: number; windowMs: number; unit?: Unit }): FixedWindowLimit {
  return { kind: 'fixedWindow', ...windowOptions(options, 'fixedWindow()') }
}

const configSchema = ({ z, unit, positive, duration }: ConfigKit) =>
  z.strictObject({ kind: z.literal('fixedWindow'), unit, limit: positive, window: duration })

/** A window's start and count, packed as two numbers (shared with the calendar algorithm). */
export const WINDOW_COUNT: PackedState<FixedWindowState> = {
  width: 2,
  read: (a, at) => (a[at] === 0 && a[at + 1] === 0 ? undefined : { start: a[at]!, count: a[at + 1]! }),
  write: (a, at, s) => {
    a[at] = s?.start ?? 0
    a[at + 1] = s?.count ?? 0
  },
}

export const fixedWindowAlgorithm: Algorithm<
  FixedWindowLimit,
  FixedWindowState,
  z.output<ReturnType<typeof configSchema>>
> = {
  kind: 'fixedWindow',
  normalize: (d) => fixedWindow(d as never),
  capacity: (d) => d.limit,
  windowSeconds: (d) => d.windowMs / 1000,
  scale: (d, n) => ({ ...d, limit: d.limit / n }),
  refill: 'windowEnd',
  inFlight: false,
  needsOpId: false,
  check: (s, now, cost, d) => fixedWindowCheck(s, now, cost, d),
  checkPacked: fixedWindowCheckPacked,
  adjust: (s, now, delta, d, ctx) =>
    delta >= 0 ? fixedWindowForce(s, now, delta, d) : fixedWindowRefund(s, now, -delta, ctx.chargedAt, d),
  packed: WINDOW_COUNT,
  lua: { file: 'fixed-window.lua', params: (d) => [d.limit, d.windowMs] },
  config: {
    schema: configSchema,
    toLimit: (c) => fixedWindow({ limit: c.limit, windowMs: c.window, unit: c.unit ?? 'requests' }),
  },
  sample: (n) => fixedWindow({ limit: n, windowMs: 3_600_000 }),
}
