/**
 * From a subject's detector options and what a request showed, the steps its store runs
 * (engine.ts). A detector's parameters are one object per options object (made once, then
 * shared by every request's step), so that a store can encode them once.
 */
import {
  type AddressParams,
  type CheckStep,
  type CountryParams,
  type LoopParams,
  PromptLoopStep,
  type RecordStep,
  type ScrapeParams,
} from './engine.js'
import {
  countsCountries,
  type DetectorName,
  type DetectorSet,
  type LoopOptions,
  MINUTE,
  type ScrapingOptions,
  type SharedKeyOptions,
  type SpendOptions,
} from './options.js'
import { FINGERPRINT, fingerprintInto } from './sketch.js'
import { addressCapacity, countryCapacity, loopCapacity, type SpendParams } from './state.js'

/**
 * `make(options)`, made once per options object. The last one asked for is answered without the
 * WeakMap (most calls come from few detector sets: a lookup was ~140 instructions).
 */
function once<O extends object, P>(make: (o: O) => P): (o: O) => P {
  const made = new WeakMap<O, P>()
  let lastOptions: O | undefined
  let last: P | undefined
  return (o) => {
    if (o === lastOptions) return last!
    let p = made.get(o)
    if (p === undefined) {
      p = make(o)
      made.set(o, p)
    }
    lastOptions = o
    last = p
    return p
  }
}

export const spendParams = once(
  (o: SpendOptions): SpendParams => ({
    factor: o.factor,
    bucketMs: o.bucketMs,
    sustain: Math.ceil(o.sustainMs / o.bucketMs),
    keep: 0.5 ** (o.bucketMs / o.halfLifeMs),
    floor: (o.floorPerMinute * o.bucketMs) / MINUTE,
  }),
)

const loopParams = once(
  (loop: LoopOptions): LoopParams => ({
    windowMs: loop.windowMs,
    max: loopCapacity(loop),
    distance: loop.nearDistance,
    nearFactor: loop.nearFactor,
    alertAt: loop.alertAt,
    throttleAt: loop.throttleAt,
    blockAt: loop.blockAt,
    blockMs: loop.blockMs,
  }),
)

const addressParams = once(
  (shared: SharedKeyOptions): AddressParams => ({
    windowMs: shared.windowMs,
    cap: addressCapacity(shared),
    alertAt: shared.alertAt,
    blockAt: shared.blockAt,
    blockMs: shared.blockMs,
    learn: {
      windowMs: shared.windowMs,
      factor: shared.factor,
      minAddresses: shared.minAddresses,
      warmup: shared.warmup,
      keep: 0.5 ** (shared.windowMs / shared.halfLifeMs),
    },
  }),
)

const countryParams = once(
  (shared: SharedKeyOptions): CountryParams => ({
    cap: countryCapacity(shared),
    alertAt: shared.countriesAt,
    blockAt: shared.blockCountriesAt,
  }),
)

const scrapeParams = once(
  (o: ScrapingOptions): ScrapeParams => ({
    bucketMs: o.bucketMs,
    share: o.share,
    forBuckets: Math.ceil(o.forMs / o.bucketMs),
    throttle: o.action === 'throttle',
  }),
)

/**
 * A set's parameter objects (each still one per options object) and what its steps read of it,
 * found with one lookup a step instead of one a detector.
 */
interface SetParams {
  /** Detectors of the set that act (on, and not in shadow mode). */
  enforce: readonly DetectorName[]
  loop: LoopParams | undefined
  throttlePerMinute: number
  address: AddressParams | undefined
  country: CountryParams | undefined
  spend: SpendParams | undefined
  hold: boolean
  spendUsd: boolean
  scrape: ScrapeParams | undefined
  /** The scraping detector's bucket when it throttles. */
  scrapeBucketMs: number | undefined
}

const paramsOf = once((set: DetectorSet): SetParams => {
  const { loop, sharedKey, spend, scraping } = set
  return {
    enforce: enforced(set),
    loop: loop === false ? undefined : loopParams(loop),
    throttlePerMinute: loop === false ? 0 : loop.throttlePerMinute,
    address: sharedKey === false ? undefined : addressParams(sharedKey),
    country: sharedKey !== false && countsCountries(set) ? countryParams(sharedKey) : undefined,
    spend: spend === false ? undefined : spendParams(spend),
    hold: spend !== false && spend.hold,
    spendUsd: spend !== false && spend.unit === 'usd',
    scrape: scraping === false ? undefined : scrapeParams(scraping),
    scrapeBucketMs: scraping !== false && scraping.action === 'throttle' ? scraping.bucketMs : undefined,
  }
})

export interface RequestFacts {
  /** The prompt's text (the gateway's messages, or what the app's `prompt` hook returns). */
  prompt?: string | undefined
  /** Further parts of the prompt, each after a newline (the gateway's, not joined: see fingerprint()). */
  more?: readonly string[] | undefined
  /** The caller's address bucket (an IPv6 /64), counted for keys only. */
  address?: string | undefined
  /** The subject is an API key (shared-key detection applies to keys). */
  isKey: boolean
  /** The caller's country (ISO code; '' when its address has none), when the set counts countries. */
  country?: string | undefined
}

/** The check step for a request; undefined when no detector looks at it. */
export function checkStep(set: DetectorSet, facts: RequestFacts): CheckStep | undefined {
  const p = paramsOf(set)
  const step: CheckStep = { throttlePerMinute: 0, enforce: p.enforce }
  const prompt = facts.prompt
  if (p.loop !== undefined && prompt !== undefined && (prompt !== '' || facts.more !== undefined)) {
    // The fingerprint as numbers: its hash's hex digits are made only if a store reads them.
    fingerprintInto(prompt, facts.more)
    const f = FINGERPRINT
    step.loop = new PromptLoopStep(f[0]!, f[1]!, f[2]! >>> 0, f[3]! >>> 0, p.loop)
    step.throttlePerMinute = p.throttlePerMinute
  }
  if (p.address !== undefined && facts.isKey && facts.address !== undefined) {
    step.address = { address: facts.address, params: p.address }
    if (p.country !== undefined) step.address.country = { code: facts.country ?? '', params: p.country }
  }
  if (p.spend !== undefined) step.spend = p.spend
  if (p.scrapeBucketMs !== undefined) step.scrapeBucketMs = p.scrapeBucketMs
  if (
    step.loop === undefined &&
    step.address === undefined &&
    step.spend === undefined &&
    step.enforce.length === 0
  ) {
    return undefined
  }
  return step
}

/** Detectors of the set that act (on, and not in shadow mode). */
export function enforced(set: DetectorSet): DetectorName[] {
  const out: DetectorName[] = []
  for (const name of ['loop', 'spend', 'sharedKey', 'scraping'] as const) {
    const o = set[name]
    if (o !== false && !o.shadow) out.push(name)
  }
  return out
}

/**
 * The record step for a request's cost (`tokens`, `usd`) and the share of its most used limit
 * (0..1); undefined when neither detector is on.
 */
export function recordStep(
  set: DetectorSet,
  cost: { tokens: number; usd: number },
  used: number | undefined,
): RecordStep | undefined {
  const p = paramsOf(set)
  const step: RecordStep = {}
  if (p.spend !== undefined) {
    const amount = p.spendUsd ? cost.usd : cost.tokens
    if (Number.isFinite(amount) && amount >= 0) step.spend = { params: p.spend, amount, hold: p.hold }
  }
  if (p.scrape !== undefined && used !== undefined) step.scrape = { used, params: p.scrape }
  return step.spend === undefined && step.scrape === undefined ? undefined : step
}
