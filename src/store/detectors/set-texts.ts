/**
 * The detector sets of check and record steps as lua/subject.lua `set_of` reads them: one text
 * per step naming every parameter of the detectors it runs. Requests of one tier make the same
 * text, so the last one is kept with the parts it was made of (compared by identity: parameter
 * objects are made once per detector set and never changed) — a step of the same set costs seven
 * comparisons, not a text built and then hashed again by the batcher's map (batch.ts).
 */
import type {
  AddressParams,
  CheckStep,
  CountryParams,
  DetectorName,
  LoopParams,
  RecordStep,
  ScrapeParams,
  SpendParams,
} from '../../core/detectors/index.js'

/** A detector's parameters as the scripts read them (lua/subject.lua `params`): numbers, in order. */
const loopArgs = (p: LoopParams) => [
  p.windowMs,
  p.max,
  p.distance,
  p.nearFactor,
  p.alertAt,
  p.throttleAt,
  p.blockAt,
  p.blockMs,
]
const addressArgs = (p: AddressParams) => [
  p.windowMs,
  p.cap,
  p.alertAt,
  p.blockAt,
  p.blockMs,
  p.learn.factor,
  p.learn.minAddresses,
  p.learn.warmup,
  p.learn.keep,
]
const countryArgs = (p: CountryParams) => [p.cap, p.alertAt, p.blockAt]
const spendArgs = (p: SpendParams) => [p.factor, p.bucketMs, p.sustain, p.keep, p.floor]
const scrapeArgs = (p: ScrapeParams) => [p.bucketMs, p.share, p.forBuckets, p.throttle ? 1 : 0]

const enforcedTexts = new WeakMap<readonly DetectorName[], string>()
/** The enforced detectors' names, comma-separated, made once per list (steps.ts shares them). */
function enforcedText(names: readonly DetectorName[]): string {
  let text = enforcedTexts.get(names)
  if (text === undefined) {
    text = names.join(',')
    enforcedTexts.set(names, text)
  }
  return text
}

const encodings = new WeakMap<object, string>()
/** `params` as one comma-separated string, made once per parameters object (steps.ts shares them). */
function encoded<P extends object>(params: P, args: (p: P) => number[]): string {
  let text = encodings.get(params)
  if (text === undefined) {
    text = args(params).map(String).join(',')
    encodings.set(params, text)
  }
  return text
}

/** The set texts of one store (its ttl is part of each), the last of each kind kept. */
export class SetTexts {
  private check?: {
    enforce: readonly DetectorName[]
    throttle: number
    loop: LoopParams | undefined
    address: AddressParams | undefined
    spend: SpendParams | undefined
    scrape: number | undefined
    country: CountryParams | undefined
    text: string
  }
  private record?: {
    spend: SpendParams | undefined
    hold: boolean
    scrape: ScrapeParams | undefined
    text: string
  }

  constructor(private readonly ttlMs: number) {}

  /** `ttl|enforced|throttle|loop|addresses|spend|scraping bucket|countries` (lua/check.lua). */
  checkSet(step: CheckStep): string {
    const loop = step.loop?.params
    const address = step.address?.params
    const country = step.address?.country?.params
    const last = this.check
    if (
      last !== undefined &&
      last.enforce === step.enforce &&
      last.throttle === step.throttlePerMinute &&
      last.loop === loop &&
      last.address === address &&
      last.spend === step.spend &&
      last.scrape === step.scrapeBucketMs &&
      last.country === country
    ) {
      return last.text
    }
    const text = `${this.ttlMs}|${enforcedText(step.enforce)}|${step.throttlePerMinute}|${
      loop === undefined ? '' : encoded(loop, loopArgs)
    }|${address === undefined ? '' : encoded(address, addressArgs)}|${
      step.spend === undefined ? '' : encoded(step.spend, spendArgs)
    }|${step.scrapeBucketMs ?? 0}|${country === undefined ? '' : encoded(country, countryArgs)}`
    this.check = {
      enforce: step.enforce,
      throttle: step.throttlePerMinute,
      loop,
      address,
      spend: step.spend,
      scrape: step.scrapeBucketMs,
      country,
      text,
    }
    return text
  }

  /** `ttl|spend,hold|scraping` (lua/record.lua). */
  recordSet(step: RecordStep): string {
    const spend = step.spend?.params
    const hold = step.spend?.hold === true
    const scrape = step.scrape?.params
    const last = this.record
    if (last !== undefined && last.spend === spend && last.hold === hold && last.scrape === scrape)
      return last.text
    const text = `${this.ttlMs}|${spend === undefined ? '' : `${encoded(spend, spendArgs)},${hold ? 1 : 0}`}|${
      scrape === undefined ? '' : encoded(scrape, scrapeArgs)
    }`
    this.record = { spend, hold, scrape, text }
    return text
  }
}
