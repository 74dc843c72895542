/**
 * The detectors' two steps for one subject, and the gateway-wide failed-key step, as pure
 * functions of the state and `now`: `check` before a request is admitted (loops, shared keys, and
 * whether a standing flag refuses it), `record` once its cost is known (spend velocity, slow
 * scraping). The inputs are plain numbers and strings: the same ones the Redis scripts take.
 */
import { BLOCK, type DetectorName, THROTTLE } from './options.js'
import { hashHalf, hashText } from './sketch.js'
import {
  countryLevel,
  flagAt,
  holdGate,
  type LearnParams,
  learnAddresses,
  levelOf,
  observeAddress,
  observeCountry,
  observeFingerprint,
  observeScrape,
  raise,
  recordSpend,
  type SpendParams,
  type SubjectState,
  scrapeGate,
  throttleGate,
} from './state.js'

/**
 * A loop detector's parameters: the same object for every request of one detector set
 * (steps.ts), so that a store can encode it once.
 */
export interface LoopParams {
  windowMs: number
  max: number
  distance: number
  nearFactor: number
  alertAt: number
  throttleAt: number
  blockAt: number
  blockMs: number
}

export interface LoopStep {
  /** The prompt hash: 16 lower-case hex digits (promptHash()). */
  hash: string
  hi: number
  lo: number
  params: LoopParams
}

/**
 * A loop step made from a prompt (steps.ts): the prompt hash kept as the two int32 halves the
 * fingerprint computes (`h0`, `h1`), which the memory store counts by, and made into its hex
 * digits (`hash`, what the Redis store sends) only when read. A step made otherwise is counted by
 * hashHalf() of its `hash`.
 */
export class PromptLoopStep implements LoopStep {
  private text: string | undefined
  constructor(
    readonly h0: number,
    readonly h1: number,
    readonly hi: number,
    readonly lo: number,
    readonly params: LoopParams,
  ) {}

  get hash(): string {
    if (this.text === undefined) this.text = hashText(this.h0, this.h1)
    return this.text
  }
}

/** A shared-key detector's parameters, one object per detector set (as LoopParams). */
export interface AddressParams {
  windowMs: number
  cap: number
  alertAt: number
  blockAt: number
  blockMs: number
  /** The learned threshold's parameters (factor 0: off). */
  learn: LearnParams
}

export interface AddressStep {
  address: string
  params: AddressParams
  /** Countries, when the detector counts them (a GeoIP database is configured). */
  country?: CountryStep
}

/** Country thresholds, one object per detector set. */
export interface CountryParams {
  cap: number
  /** Thresholds, 0 = off. */
  alertAt: number
  blockAt: number
}

export interface CountryStep {
  /** The caller's country (ISO 3166 code), or '' when its address has none. */
  code: string
  params: CountryParams
}

export interface CheckStep {
  loop?: LoopStep
  address?: AddressStep
  /** The throttle's rate for a subject a loop throttles. */
  throttlePerMinute: number
  /** The spend detector's parameters, for the hold of a subject it holds. */
  spend?: SpendParams
  /** The scraping detector's bucket, for the throttle of a subject it throttles. */
  scrapeBucketMs?: number
  /** Detectors whose flags refuse requests (the others are in shadow mode: they report only). */
  enforce: readonly DetectorName[]
}

/** A detector that raised its level on this request: reported once, by this caller only. */
export interface Raised {
  detector: DetectorName
  level: number
  /** What it measured (identical prompts, addresses, spend per bucket, buckets at the limit…). */
  value: number
  /** The threshold that value crossed. */
  threshold: number
  /** For a shared key: the addresses seen in the window. */
  addresses?: string[]
  /** For a shared key whose countries are counted: the countries seen in the window. */
  countries?: string[]
  /** For a shared key whose countries are counted: which count crossed its threshold. */
  by?: 'addresses' | 'countries'
  /** For failed keys sharing a prefix: that prefix. */
  prefix?: string
}

export interface Refused {
  detector: DetectorName
  level: number
  /** Until the flag ends or the next minute/bucket; Infinity when only an operator can end it. */
  retryAfterMs: number
}

export interface CheckOutcome {
  raised: Raised[]
  refused: Refused | undefined
  /** The subject is allow-listed: nothing was observed. */
  allowed: boolean
}

export function isAllowed(state: SubjectState, now: number): boolean {
  return state.allow === -1 || state.allow > now
}

function holdFor(level: number, windowMs: number, blockMs: number): number {
  return level === BLOCK ? blockMs : windowMs
}

/** Observes a request about to be admitted, raises flags, and says whether a standing flag refuses it. */
export function checkSubject(state: SubjectState, step: CheckStep, now: number): CheckOutcome {
  if (isAllowed(state, now)) return { raised: [], refused: undefined, allowed: true }
  const raised: Raised[] = []
  const loop = step.loop
  if (loop !== undefined) {
    const l = loop.params
    const made = loop instanceof PromptLoopStep
    const h0 = made ? loop.h0 : hashHalf(loop.hash, 0)
    const h1 = made ? loop.h1 : hashHalf(loop.hash, 8)
    const { exact, near } = observeFingerprint(
      state,
      now,
      h0,
      h1,
      loop.hi,
      loop.lo,
      now,
      l.windowMs,
      l.max,
      l.distance,
    )
    const byExact = levelOf(exact, l.alertAt, l.throttleAt, l.blockAt)
    const byNear = l.distance > 0 ? levelOf(near, l.alertAt, l.throttleAt, l.blockAt, l.nearFactor) : 0
    const level = Math.max(byExact, byNear)
    if (raise(state, 'loop', level, now, holdFor(level, l.windowMs, l.blockMs))) {
      const value = byExact >= byNear ? exact : near
      const thresholds = [0, l.alertAt, l.throttleAt, l.blockAt]
      const scale = byExact >= byNear ? 1 : l.nearFactor
      raised.push({ detector: 'loop', level, value, threshold: Math.ceil(thresholds[level]! * scale) })
    }
  }
  const address = step.address
  if (address !== undefined) {
    const a = address.params
    const n = observeAddress(state, address.address, now, a.windowMs, a.cap)
    const learned = learnAddresses(state.hist, n, now, a.learn)
    let level = levelOf(n, a.alertAt, 0, a.blockAt)
    const byHistory = level === 0 && learned > 0 && n >= learned
    if (byHistory) level = 1
    const country = address.country
    const c = country?.params
    const nc = c === undefined ? 0 : observeCountry(state, country!.code, now, a.windowMs, c.cap)
    const byCountryLevel = c === undefined ? 0 : countryLevel(nc, c.alertAt, c.blockAt)
    const byCountries = byCountryLevel > level
    if (byCountries) level = byCountryLevel
    // A window that alerted, for either count, never teaches the key's usual number of addresses.
    if (level > 0) state.hist.x = 1
    if (raise(state, 'sharedKey', level, now, holdFor(level, a.windowMs, a.blockMs))) {
      const r: Raised = {
        detector: 'sharedKey',
        level,
        value: byCountries ? nc : n,
        threshold: byCountries
          ? level === BLOCK
            ? c!.blockAt
            : c!.alertAt
          : level === BLOCK
            ? a.blockAt
            : byHistory
              ? learned
              : a.alertAt,
        addresses: [...state.addrs.keys()],
      }
      if (c !== undefined) {
        r.countries = [...state.countries.keys()]
        r.by = byCountries ? 'countries' : 'addresses'
      }
      raised.push(r)
    }
  }
  return { raised, refused: gate(state, step, now), allowed: false }
}

/** The refusal a standing flag owes this request, if any: a block, a loop's throttle, a spend hold. */
function gate(state: SubjectState, step: CheckStep, now: number): Refused | undefined {
  // No flag ever set: none stands (each read below is a lookup by a name that varies, ~120
  // instructions).
  if (!state.flagged) return undefined
  let throttled = false
  let held = false
  for (const name of step.enforce) {
    const f = flagAt(state, name, now)
    if (f.lv === BLOCK) {
      return {
        detector: name,
        level: BLOCK,
        retryAfterMs: f.until === 0 ? Number.POSITIVE_INFINITY : f.until - now,
      }
    }
    if (f.lv === THROTTLE && name === 'loop') throttled = true
    if (f.lv === THROTTLE && name === 'spend') held = true
    if (f.lv === THROTTLE && name === 'scraping' && step.scrapeBucketMs !== undefined) {
      const wait = scrapeGate(state.scrape, now, step.scrapeBucketMs)
      if (wait > 0) return { detector: 'scraping', level: THROTTLE, retryAfterMs: wait }
    }
  }
  if (throttled) {
    const wait = throttleGate(state, now, step.throttlePerMinute)
    if (wait > 0) return { detector: 'loop', level: THROTTLE, retryAfterMs: wait }
  }
  if (held && step.spend !== undefined) {
    const wait = holdGate(state.spend, now, step.spend)
    if (wait > 0) return { detector: 'spend', level: THROTTLE, retryAfterMs: wait }
  }
  return undefined
}

/** A scraping detector's parameters, one object per detector set. */
export interface ScrapeParams {
  bucketMs: number
  share: number
  forBuckets: number
  throttle: boolean
}

export interface RecordStep {
  spend?: { params: SpendParams; amount: number; hold: boolean }
  scrape?: { used: number; params: ScrapeParams }
}

/** Records what an admitted request cost (spend velocity) and how close to its limit it was (scraping). */
export function recordSubject(state: SubjectState, step: RecordStep, now: number): Raised[] {
  if (isAllowed(state, now)) return []
  const raised: Raised[] = []
  const spend = step.spend
  if (spend !== undefined) {
    const sp = spend.params
    const r = recordSpend(state.spend, spend.amount, now, sp)
    if (r.sustained) {
      const level = spend.hold ? THROTTLE : 1
      if (raise(state, 'spend', level, now, spend.hold ? 0 : sp.sustain * sp.bucketMs)) {
        raised.push({ detector: 'spend', level, value: r.rate, threshold: sp.factor * r.baseline })
      }
    }
  }
  const scrape = step.scrape
  if (scrape !== undefined) {
    const sc = scrape.params
    const buckets = observeScrape(state.scrape, scrape.used, now, sc.bucketMs, sc.share)
    const level = sc.throttle ? THROTTLE : 1
    if (buckets >= sc.forBuckets && raise(state, 'scraping', level, now, sc.forBuckets * sc.bucketMs)) {
      raised.push({ detector: 'scraping', level, value: buckets, threshold: sc.forBuckets })
    }
  }
  return raised
}

// ------------------------------------------------------------------ failed keys, gateway-wide

export interface StuffingState {
  /** Window index, failures in it, distinct addresses in it (at most `cap`), and whether it was reported. */
  w: number
  n: number
  addrs: Set<string>
  reported: number
  /** Per key prefix this window (at most `maxPrefixes`): distinct addresses and whether it was reported. */
  prefixes: Map<string, { addrs: Set<string>; reported: number }>
}

export function emptyStuffing(): StuffingState {
  return { w: -1, n: 0, addrs: new Set(), reported: 0, prefixes: new Map() }
}

export interface StuffingStep {
  address: string
  windowMs: number
  alertAt: number
  addressesAt: number
  /** The failed key's prefix (its public id), when it has one. */
  prefix?: string | undefined
  /** Distinct addresses failing with one prefix in the window that raise an alert (0 = off). */
  prefixAddressesAt: number
  /** Prefixes counted per window; failures with further ones count gateway-wide only. */
  maxPrefixes: number
}

/**
 * Counts one failed key; raises one alert per window once failures or distinct addresses reach
 * their threshold, and one per key prefix per window once that many addresses failed with it.
 */
export function observeFailure(s: StuffingState, step: StuffingStep, now: number): Raised[] {
  const w = Math.floor(now / step.windowMs)
  if (w !== s.w) {
    s.w = w
    s.n = 0
    s.addrs = new Set()
    s.reported = 0
    s.prefixes = new Map()
  }
  const out: Raised[] = []
  s.n++
  const cap = Math.max(step.addressesAt, 1)
  if (s.addrs.size < cap) s.addrs.add(step.address)
  const byCount = s.n >= step.alertAt
  const byAddresses = step.addressesAt > 0 && s.addrs.size >= step.addressesAt
  if (s.reported === 0 && (byCount || byAddresses)) {
    s.reported = 1
    out.push({
      detector: 'stuffing',
      level: 1,
      value: byCount ? s.n : s.addrs.size,
      threshold: byCount ? step.alertAt : step.addressesAt,
      addresses: [...s.addrs],
    })
  }
  const r = observePrefix(s, step)
  if (r !== undefined) out.push(r)
  return out
}

function observePrefix(s: StuffingState, step: StuffingStep): Raised | undefined {
  const at = step.prefixAddressesAt
  if (step.prefix === undefined || at <= 0) return undefined
  let p = s.prefixes.get(step.prefix)
  if (p === undefined) {
    if (s.prefixes.size >= step.maxPrefixes) return undefined
    p = { addrs: new Set(), reported: 0 }
    s.prefixes.set(step.prefix, p)
  }
  if (p.addrs.size < at) p.addrs.add(step.address)
  if (p.reported === 1 || p.addrs.size < at) return undefined
  p.reported = 1
  return {
    detector: 'stuffing',
    level: 1,
    value: p.addrs.size,
    threshold: at,
    addresses: [...p.addrs],
    prefix: step.prefix,
  }
}
