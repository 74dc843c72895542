/**
 * `detectors:` in sluice.yaml: the library's `detectors` option with durations written as
 * durations ("5m") under names without the `Ms` (window, blockFor, sustain, bucket, halfLife,
 * for). Checked again, and merged, by the core's resolveDetectors.
 */
import { z } from 'zod'
import type { DetectorSetInput, DetectorsInput } from '../../core/detectors/options.js'
import { duration, durationOrZero } from './primitives.js'

const count = z.number().int().nonnegative()
const loop = z.strictObject({
  window: duration.optional(),
  alertAt: count.optional(),
  throttleAt: count.optional(),
  blockAt: count.optional(),
  throttlePerMinute: count.optional(),
  blockFor: duration.optional(),
  nearDistance: count.optional(),
  nearFactor: z.number().optional(),
  shadow: z.boolean().optional(),
})
const spend = z.strictObject({
  unit: z.enum(['tokens', 'usd']).optional(),
  factor: z.number().optional(),
  sustain: duration.optional(),
  bucket: duration.optional(),
  halfLife: duration.optional(),
  floorPerMinute: z.number().optional(),
  hold: z.boolean().optional(),
  shadow: z.boolean().optional(),
})
const sharedKey = z.strictObject({
  window: duration.optional(),
  alertAt: count.optional(),
  blockAt: count.optional(),
  blockFor: durationOrZero.optional(),
  factor: z.number().optional(),
  minAddresses: count.optional(),
  warmup: count.optional(),
  halfLife: duration.optional(),
  /** Distinct countries in the window (needs `geoip.database`). */
  countriesAt: count.optional(),
  blockCountriesAt: count.optional(),
  shadow: z.boolean().optional(),
})
const scraping = z.strictObject({
  share: z.number().optional(),
  for: duration.optional(),
  bucket: duration.optional(),
  action: z.enum(['alert', 'throttle']).optional(),
  shadow: z.boolean().optional(),
})
const stuffing = z.strictObject({
  window: duration.optional(),
  alertAt: count.optional(),
  addressesAt: count.optional(),
  prefixAddressesAt: count.optional(),
  maxPrefixes: count.optional(),
  shadow: z.boolean().optional(),
})
const onOff = <T extends z.ZodType>(s: T) => z.union([z.boolean(), s]).optional()
const setShape = {
  loop: onOff(loop),
  spend: onOff(spend),
  sharedKey: onOff(sharedKey),
  scraping: onOff(scraping),
}
const set = z.strictObject(setShape)

export const detectorsSchema = z.strictObject({
  ...setShape,
  stuffing: onOff(stuffing),
  shadow: z.boolean().optional(),
  /** Per tier and per key id: merged over the detectors above. */
  tiers: z.record(z.string(), set).optional(),
  keys: z.record(z.string(), set).optional(),
})
export type DetectorsConfig = z.output<typeof detectorsSchema>

const RENAMES: Record<string, string> = {
  window: 'windowMs',
  blockFor: 'blockMs',
  sustain: 'sustainMs',
  bucket: 'bucketMs',
  halfLife: 'halfLifeMs',
  for: 'forMs',
}

function renamed(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return value
  return Object.fromEntries(
    Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => [RENAMES[k] ?? k, v]),
  )
}

function setInput(s: z.output<typeof set>): DetectorSetInput {
  return Object.fromEntries(Object.entries(s).map(([k, v]) => [k, renamed(v)])) as DetectorSetInput
}

/** The library's `detectors` option from the config's. */
export function detectorsInput(c: DetectorsConfig): DetectorsInput {
  const { tiers, keys, shadow, stuffing, ...rest } = c
  const out: DetectorsInput = setInput(rest)
  if (stuffing !== undefined) out.stuffing = renamed(stuffing) as DetectorsInput['stuffing']
  if (shadow !== undefined) out.shadow = shadow
  if (tiers !== undefined)
    out.tiers = Object.fromEntries(Object.entries(tiers).map(([k, v]) => [k, setInput(v)]))
  if (keys !== undefined)
    out.keys = Object.fromEntries(Object.entries(keys).map(([k, v]) => [k, setInput(v)]))
  return out
}
