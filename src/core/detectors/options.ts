/**
 * What the abuse detectors look for and what they do, with their defaults, checked once: a bad
 * value throws SluiceInputError naming the option. Every detector can be turned off (`false`), set
 * per tier and per key (`tiers`, `keys`: merged over the defaults), and run in shadow mode (detect,
 * report, never refuse).
 */
import { describe, SluiceInputError } from '../errors.js'

export type DetectorName = 'loop' | 'spend' | 'sharedKey' | 'scraping' | 'stuffing'
export const DETECTORS: readonly DetectorName[] = ['loop', 'spend', 'sharedKey', 'scraping', 'stuffing']

/** A detector's graduated response, in rising order (0 = nothing). */
export const LEVEL_NAMES = ['none', 'alert', 'throttle', 'block'] as const
export type DetectionLevel = 'alert' | 'throttle' | 'block'
export const ALERT = 1
export const THROTTLE = 2
export const BLOCK = 3

export interface LoopOptions {
  /** How far back identical prompts are counted (default 5 minutes). */
  windowMs: number
  /** Identical prompts in the window that raise an alert (default 20). */
  alertAt: number
  /** … that throttle the subject to `throttlePerMinute` (default 20; 0 = never). */
  throttleAt: number
  /** … that block the subject for `blockMs` (default 60; 0 = never). */
  blockAt: number
  /** Requests per minute a throttled subject keeps (default 2). */
  throttlePerMinute: number
  /** How long a block lasts (default 15 minutes). */
  blockMs: number
  /** SimHash bits two prompts may differ in and still count as near-identical (default 3; 0 = exact only). */
  nearDistance: number
  /** Near-identical prompts count against each threshold times this (default 1.5). */
  nearFactor: number
  shadow: boolean
}

export interface SpendOptions {
  /** What is measured: tokens or US dollars (default tokens). */
  unit: 'tokens' | 'usd'
  /** Spend per bucket above this many times the baseline is a spike (default 10). */
  factor: number
  /** A spike must last this long to count (default 3 minutes). */
  sustainMs: number
  /** The width of one measured interval (default 1 minute). */
  bucketMs: number
  /** The baseline (a decayed average per bucket) halves its memory over this (default 3 days). */
  halfLifeMs: number
  /** The baseline is never taken below this, per minute (default 10,000 tokens or 1 USD). */
  floorPerMinute: number
  /** On a sustained spike, hold the subject to its baseline until an operator clears it (default true); else alert only. */
  hold: boolean
  shadow: boolean
}

export interface SharedKeyOptions {
  /** How far back distinct addresses (/64 for IPv6) of one key are counted (default 10 minutes). */
  windowMs: number
  /** Distinct addresses that raise an alert (default 20). */
  alertAt: number
  /** Distinct addresses that block the key (default 0 = never). */
  blockAt: number
  /** How long such a block lasts (default 0 = until an operator clears it). */
  blockMs: number
  /**
   * Learned threshold: an alert also when a window's addresses reach `factor` × the key's usual
   * count (its baseline), never below `minAddresses` (default 3; 0 = learning off).
   */
  factor: number
  /** The learned threshold is never below this (default 8). */
  minAddresses: number
  /** Windows in which the key was used before its baseline counts (default 6). */
  warmup: number
  /** The baseline (a decayed average over windows the key was used in) halves its memory over this (default 7 days). */
  halfLifeMs: number
  /** Distinct countries (GeoIP, `geoip.database`) in the window that raise an alert (default 0 = off). */
  countriesAt: number
  /** Distinct countries in the window that block the key (default 0 = never). */
  blockCountriesAt: number
  shadow: boolean
}

export interface ScrapingOptions {
  /** Share of a limit counted as "at the limit" (default 0.9). */
  share: number
  /** How long a subject must stay there (default 2 hours). */
  forMs: number
  /** Sampling interval: every one must see the subject at the limit (default 1 minute). */
  bucketMs: number
  /**
   * `alert` (default), or `throttle`: also hold the subject below `share` — once a request in a
   * bucket finds it there, the rest of that bucket is refused — for as long as it keeps at it.
   */
  action: 'alert' | 'throttle'
  shadow: boolean
}

export interface StuffingOptions {
  /** Window of the gateway-wide count of failed keys (default 1 minute). */
  windowMs: number
  /** Failed keys across all addresses in the window that raise an alert (default 100). */
  alertAt: number
  /** Distinct addresses sending failed keys in the window that raise an alert (default 20). */
  addressesAt: number
  /** Distinct addresses failing with one key prefix in the window that raise an alert (default 10; 0 = off). */
  prefixAddressesAt: number
  /** Key prefixes counted per window (default 1,000): a bound on the state. */
  maxPrefixes: number
  shadow: boolean
}

export interface DetectorSet {
  loop: LoopOptions | false
  spend: SpendOptions | false
  sharedKey: SharedKeyOptions | false
  scraping: ScrapingOptions | false
}

/** A detector set as written: each detector's options partly given, or false (off), or true (defaults). */
export type DetectorSetInput = {
  [K in keyof DetectorSet]?: Partial<Exclude<DetectorSet[K], false>> | boolean
}

export interface DetectorsInput extends DetectorSetInput {
  stuffing?: Partial<StuffingOptions> | boolean
  /** Per tier: merged over the detectors above. */
  tiers?: Record<string, DetectorSetInput>
  /** Per key id: merged over its tier's. */
  keys?: Record<string, DetectorSetInput>
  /** Everything in shadow mode. */
  shadow?: boolean
}

export const MINUTE = 60_000

export const LOOP_DEFAULTS: LoopOptions = {
  windowMs: 5 * MINUTE,
  alertAt: 20,
  throttleAt: 20,
  blockAt: 60,
  throttlePerMinute: 2,
  blockMs: 15 * MINUTE,
  nearDistance: 3,
  nearFactor: 1.5,
  shadow: false,
}
export const SPEND_DEFAULTS: SpendOptions = {
  unit: 'tokens',
  factor: 10,
  sustainMs: 3 * MINUTE,
  bucketMs: MINUTE,
  halfLifeMs: 3 * 1440 * MINUTE,
  floorPerMinute: 10_000,
  hold: true,
  shadow: false,
}
export const SHARED_KEY_DEFAULTS: SharedKeyOptions = {
  windowMs: 10 * MINUTE,
  alertAt: 20,
  blockAt: 0,
  blockMs: 0,
  factor: 3,
  minAddresses: 8,
  warmup: 6,
  halfLifeMs: 7 * 1440 * MINUTE,
  countriesAt: 0,
  blockCountriesAt: 0,
  shadow: false,
}
export const SCRAPING_DEFAULTS: ScrapingOptions = {
  share: 0.9,
  forMs: 120 * MINUTE,
  bucketMs: MINUTE,
  action: 'alert',
  shadow: false,
}
export const STUFFING_DEFAULTS: StuffingOptions = {
  windowMs: MINUTE,
  alertAt: 100,
  addressesAt: 20,
  prefixAddressesAt: 10,
  maxPrefixes: 1000,
  shadow: false,
}
const DEFAULTS = {
  loop: LOOP_DEFAULTS,
  spend: SPEND_DEFAULTS,
  sharedKey: SHARED_KEY_DEFAULTS,
  scraping: SCRAPING_DEFAULTS,
  stuffing: STUFFING_DEFAULTS,
} as const

/** Most entries kept per subject: loop fingerprints, or addresses of a key. */
export const MAX_ENTRIES = 1024

type Check = (value: unknown, what: string) => unknown

const count: Check = (v, what) => {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v > MAX_ENTRIES) {
    throw new SluiceInputError(`${what} must be a whole number from 0 to ${MAX_ENTRIES}, got ${describe(v)}`)
  }
  return v
}
const positiveCount: Check = (v, what) => {
  if (count(v, what) === 0) throw new SluiceInputError(`${what} must be at least 1, got 0`)
  return v
}
const ms: Check = (v, what) => {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) {
    throw new SluiceInputError(`${what} must be a positive whole number of milliseconds, got ${describe(v)}`)
  }
  return v
}
const msOrZero: Check = (v, what) => (v === 0 ? 0 : ms(v, what))
const positive: Check = (v, what) => {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
    throw new SluiceInputError(`${what} must be a positive number, got ${describe(v)}`)
  }
  return v
}
const share: Check = (v, what) => {
  if (typeof v !== 'number' || !(v > 0 && v <= 1)) {
    throw new SluiceInputError(`${what} must be a share above 0 and at most 1, got ${describe(v)}`)
  }
  return v
}
const bool: Check = (v, what) => {
  if (typeof v !== 'boolean') throw new SluiceInputError(`${what} must be true or false, got ${describe(v)}`)
  return v
}
const distance: Check = (v, what) => {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v > 16) {
    throw new SluiceInputError(`${what} must be a whole number from 0 to 16, got ${describe(v)}`)
  }
  return v
}
const factor: Check = (v, what) => {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 1) {
    throw new SluiceInputError(`${what} must be a number of at least 1, got ${describe(v)}`)
  }
  return v
}
const factorOrOff: Check = (v, what) => {
  if (typeof v !== 'number' || !Number.isFinite(v) || (v !== 0 && v < 1)) {
    throw new SluiceInputError(`${what} must be 0 (off) or a number of at least 1, got ${describe(v)}`)
  }
  return v
}
const action: Check = (v, what) => {
  if (v !== 'alert' && v !== 'throttle')
    throw new SluiceInputError(`${what} must be "alert" or "throttle", got ${describe(v)}`)
  return v
}
const unit: Check = (v, what) => {
  if (v !== 'tokens' && v !== 'usd')
    throw new SluiceInputError(`${what} must be "tokens" or "usd", got ${describe(v)}`)
  return v
}

const CHECKS: { [K in keyof typeof DEFAULTS]: Record<keyof (typeof DEFAULTS)[K], Check> } = {
  loop: {
    windowMs: ms,
    alertAt: positiveCount,
    throttleAt: count,
    blockAt: count,
    throttlePerMinute: count,
    blockMs: ms,
    nearDistance: distance,
    nearFactor: factor,
    shadow: bool,
  },
  spend: {
    unit,
    factor,
    sustainMs: ms,
    bucketMs: ms,
    halfLifeMs: ms,
    floorPerMinute: positive,
    hold: bool,
    shadow: bool,
  },
  sharedKey: {
    windowMs: ms,
    alertAt: positiveCount,
    blockAt: count,
    blockMs: msOrZero,
    factor: factorOrOff,
    minAddresses: positiveCount,
    warmup: count,
    halfLifeMs: ms,
    countriesAt: count,
    blockCountriesAt: count,
    shadow: bool,
  },
  scraping: { share, forMs: ms, bucketMs: ms, action, shadow: bool },
  stuffing: {
    windowMs: ms,
    alertAt: positiveCount,
    addressesAt: count,
    prefixAddressesAt: count,
    maxPrefixes: positiveCount,
    shadow: bool,
  },
}

/**
 * One detector's options: `base` with `input` merged over it (`false` turns it off, `true` or
 * undefined keeps `base`, or the defaults when `base` is off). Throws naming `what.<option>`.
 */
export function resolveDetector<K extends DetectorName>(
  name: K,
  input: unknown,
  base: (typeof DEFAULTS)[K] | false,
  what: string,
  shadow?: boolean,
): (typeof DEFAULTS)[K] | false {
  if (input === false) return false
  const start = { ...(base === false ? DEFAULTS[name] : base) } as Record<string, unknown>
  if (shadow !== undefined) start.shadow = shadow
  if (input === undefined || input === true)
    return base === false && input !== true ? false : (start as never)
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new SluiceInputError(`${what} must be true, false or an object of options, got ${describe(input)}`)
  }
  const checks = CHECKS[name] as Record<string, Check>
  for (const [option, value] of Object.entries(input)) {
    const check = checks[option]
    if (check === undefined) {
      throw new SluiceInputError(
        `${what} has no option "${option}"; it takes ${Object.keys(checks).join(', ')}`,
      )
    }
    if (value !== undefined) start[option] = check(value, `${what}.${option}`)
  }
  if (name === 'spend' && (start.sustainMs as number) < (start.bucketMs as number)) {
    throw new SluiceInputError(`${what}.sustainMs must be at least ${what}.bucketMs`)
  }
  if (name === 'scraping' && (start.forMs as number) < (start.bucketMs as number)) {
    throw new SluiceInputError(`${what}.forMs must be at least ${what}.bucketMs`)
  }
  return start as never
}

const SET_NAMES = ['loop', 'spend', 'sharedKey', 'scraping'] as const

/** A detector set with `input` merged over `base`. */
export function resolveSet(input: unknown, base: DetectorSet, what: string, shadow?: boolean): DetectorSet {
  if (input !== undefined && (typeof input !== 'object' || input === null || Array.isArray(input))) {
    throw new SluiceInputError(`${what} must be an object, got ${describe(input)}`)
  }
  const o = (input ?? {}) as Record<string, unknown>
  for (const k of Object.keys(o)) {
    if (!(SET_NAMES as readonly string[]).includes(k)) {
      throw new SluiceInputError(`${what} has no detector "${k}"; there are ${SET_NAMES.join(', ')}`)
    }
  }
  return {
    loop: resolveDetector('loop', o.loop, base.loop, `${what}.loop`, shadow),
    spend: resolveDetector('spend', o.spend, base.spend, `${what}.spend`, shadow),
    sharedKey: resolveDetector('sharedKey', o.sharedKey, base.sharedKey, `${what}.sharedKey`, shadow),
    scraping: resolveDetector('scraping', o.scraping, base.scraping, `${what}.scraping`, shadow),
  }
}

export interface ResolvedDetectors {
  base: DetectorSet
  stuffing: StuffingOptions | false
  tiers: Record<string, DetectorSet>
  keys: Record<string, DetectorSetInput>
}

const ALL_ON: DetectorSet = {
  loop: LOOP_DEFAULTS,
  spend: SPEND_DEFAULTS,
  sharedKey: SHARED_KEY_DEFAULTS,
  scraping: SCRAPING_DEFAULTS,
}

/** Checks the `detectors` option; every detector is on with its defaults unless turned off. */
export function resolveDetectors(input: DetectorsInput | undefined, what = 'detectors'): ResolvedDetectors {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new SluiceInputError(`${what} must be an object, got ${describe(input)}`)
  }
  const { tiers, keys, stuffing, shadow, ...set } = input
  if (shadow !== undefined) bool(shadow, `${what}.shadow`)
  const base = resolveSet(set, ALL_ON, what, shadow)
  const out: ResolvedDetectors = {
    base,
    stuffing: resolveDetector('stuffing', stuffing, STUFFING_DEFAULTS, `${what}.stuffing`, shadow),
    tiers: {},
    keys: {},
  }
  for (const [tier, t] of Object.entries(tiers ?? {})) {
    out.tiers[tier] = resolveSet(t, base, `${what}.tiers.${tier}`)
  }
  for (const [key, k] of Object.entries(keys ?? {})) {
    resolveSet(k, base, `${what}.keys.${key}`) // checked now, merged over the key's tier on use
    out.keys[key] = k
  }
  return out
}

/** Whether the set counts a key's countries (it then needs a GeoIP database). */
export function countsCountries(set: DetectorSet): boolean {
  const o = set.sharedKey
  return o !== false && (o.countriesAt > 0 || o.blockCountriesAt > 0)
}

/** Whether any set of `r` (base, tiers, keys) counts countries. */
export function anyCountsCountries(r: ResolvedDetectors): boolean {
  if (countsCountries(r.base)) return true
  if (Object.values(r.tiers).some(countsCountries)) return true
  return Object.values(r.keys).some((k) => {
    const o = k.sharedKey
    return typeof o === 'object' && ((o.countriesAt ?? 0) > 0 || (o.blockCountriesAt ?? 0) > 0)
  })
}

/** The detector set of one subject: its key's, else its tier's, else the base. */
export function detectorSetFor(r: ResolvedDetectors, tier: string, keyId: string | undefined): DetectorSet {
  const tierSet = r.tiers[tier] ?? r.base
  const keyInput = keyId === undefined ? undefined : r.keys[keyId]
  return keyInput === undefined ? tierSet : resolveSet(keyInput, tierSet, `detectors.keys.${keyId}`)
}
