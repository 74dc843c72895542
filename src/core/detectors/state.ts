/**
 * One subject's detector state and the steps that change it, as pure functions of the state, the
 * input and `now`. The memory store runs these; the Redis store runs the same steps in Lua
 * (src/store/detectors/lua/), and one contract suite checks both.
 *
 * Bounded per subject: at most `maxLoopEntries` fingerprints, at most `addressCap` addresses, at
 * most `countryCap` countries and a few numbers (see docs/abuse.md for the bytes).
 */

import { LoopEntries, type LoopEntry } from './loop-entries.js'
import { BLOCK, type DetectorName, MAX_ENTRIES, THROTTLE } from './options.js'
import { hashHalf } from './sketch.js'

export { LoopEntries, type LoopEntry }

/** A detector's standing for a subject: level 0..3, until when (0 = until an operator clears it). */
export interface Flag {
  lv: number
  until: number
}

export interface SpendState {
  /** Baseline spend per bucket (decayed average). */
  b: number
  /** Current bucket index (-1: none yet), its spend, and how many buckets before it in a row were spikes. */
  m: number
  s: number
  h: number
}

export interface ScrapeState {
  /** Current bucket, whether it saw the subject at the limit, and how many buckets before it in a row did. */
  m: number
  hi: number
  c: number
}

/** A key's usual number of addresses per window, learned from the windows it was used in. */
export interface AddressHistory {
  /** Current window index (-1: none yet), the most addresses seen in it, and whether it alerted. */
  e: number
  p: number
  x: number
  /** The baseline (decayed average of finished windows' peaks) and how many windows taught it. */
  b: number
  n: number
}

export interface SubjectState {
  loop: LoopEntries
  addrs: Map<string, number>
  /** No address in `addrs` was seen before this (a bound: until it leaves the window, none does). */
  addrsSince: number
  /** A key's countries (ISO codes) in the shared-key window, each with when it was last seen. */
  countries: Map<string, number>
  hist: AddressHistory
  flags: Partial<Record<DetectorName, Flag>>
  /** Whether a flag was ever set in `flags` (none: a check's gate has nothing to read). */
  flagged: boolean
  /** The throttle's per-minute counter: minute index and requests in it. */
  rm: number
  rn: number
  spend: SpendState
  scrape: ScrapeState
  /** Allow-listed until (0: not; -1: for good). */
  allow: number
}

export function emptyState(): SubjectState {
  return {
    loop: new LoopEntries(),
    addrs: new Map(),
    addrsSince: Number.POSITIVE_INFINITY,
    countries: new Map(),
    hist: emptyHistory(),
    flags: {},
    flagged: false,
    rm: -1,
    rn: 0,
    spend: { b: 0, m: -1, s: 0, h: 0 },
    scrape: { m: -1, hi: 0, c: 0 },
    allow: 0,
  }
}

/** The flag as it stands at `now` (an expired one reads as level 0). */
export function flagAt(state: SubjectState, name: DetectorName, now: number): Flag {
  const f = state.flags[name]
  if (f === undefined || f.lv === 0 || (f.until > 0 && now >= f.until)) return { lv: 0, until: 0 }
  return f
}

/**
 * Raises a detector's flag to `level` (never lowers it before it expires); a raised or standing
 * flag lasts `holdMs` from now (0 = until cleared). Returns whether the level went up — the one
 * moment an event is reported, once across instances.
 */
export function raise(
  state: SubjectState,
  name: DetectorName,
  level: number,
  now: number,
  holdMs: number,
): boolean {
  if (level <= 0) return false
  const f = flagAt(state, name, now)
  const until = holdMs > 0 ? now + holdMs : 0
  if (level > f.lv) {
    state.flags[name] = { lv: level, until }
    state.flagged = true
    return true
  }
  if (level === f.lv && f.until > 0)
    state.flags[name] = { lv: f.lv, until: until === 0 ? 0 : Math.max(f.until, until) }
  return false
}

/** The level a count reaches against alert / throttle / block thresholds (0 = off), each × `scale`. */
export function levelOf(n: number, alertAt: number, throttleAt: number, blockAt: number, scale = 1): number {
  if (blockAt > 0 && n >= blockAt * scale) return BLOCK
  if (throttleAt > 0 && n >= throttleAt * scale) return THROTTLE
  if (n >= alertAt * scale) return 1
  return 0
}

// ------------------------------------------------------------------ prompt loops

/**
 * Adds a fingerprint (newest first, at most `max` kept) and counts, among the kept ones seen in
 * the last `windowMs` (this one included), the identical and the near-identical (SimHash within
 * `distance` bits; 0 = none counted).
 */
export function observeLoop(
  state: SubjectState,
  entry: LoopEntry,
  now: number,
  windowMs: number,
  max: number,
  distance: number,
): { exact: number; near: number } {
  const { hash, hi, lo } = entry
  return observeFingerprint(
    state,
    entry.at,
    hashHalf(hash, 0),
    hashHalf(hash, 8),
    hi,
    lo,
    now,
    windowMs,
    max,
    distance,
  )
}

/**
 * observeLoop() of the entry at `at` whose prompt hash has the halves `h0`, `h1` (hashHalf()) and
 * whose SimHash is (`hi`, `lo`): no string read or kept.
 */
export function observeFingerprint(
  state: SubjectState,
  at: number,
  h0: number,
  h1: number,
  hi: number,
  lo: number,
  now: number,
  windowMs: number,
  max: number,
  distance: number,
): { exact: number; near: number } {
  state.loop.push(at, h0, h1, hi, lo, max)
  // Newest first: the first entry out of the window ends the live ones.
  return state.loop.countNewest(now - windowMs, distance)
}

/** Fingerprints kept for a loop detector: enough to count to its highest threshold. */
export function loopCapacity(o: {
  alertAt: number
  throttleAt: number
  blockAt: number
  nearFactor: number
}): number {
  const top = Math.max(o.alertAt, o.throttleAt, o.blockAt)
  return Math.min(MAX_ENTRIES, Math.ceil(top * o.nearFactor) + 1)
}

// ------------------------------------------------------------------ shared keys

/**
 * Notes an address (a /64 for IPv6) seen now, forgetting those not seen in `windowMs`; at most
 * `cap` are kept (a full set takes no new address: the count is then at least `cap`).
 */
export function observeAddress(
  state: SubjectState,
  address: string,
  now: number,
  windowMs: number,
  cap: number,
): number {
  const since = now - windowMs
  // The addresses are read only when one may have left the window (a Map's iterator and its
  // entries were ~0.3k instructions a call); the bound is then made exact again.
  if (state.addrsSince <= since) {
    let first = Number.POSITIVE_INFINITY
    for (const [a, at] of state.addrs) {
      if (at <= since) state.addrs.delete(a)
      else if (at < first) first = at
    }
    state.addrsSince = first
  }
  if (state.addrs.has(address) || state.addrs.size < cap) {
    state.addrs.set(address, now)
    if (now < state.addrsSince) state.addrsSince = now
  }
  return state.addrs.size
}

/**
 * Notes a country seen now (`''`: the address has none — private or not in the database — and
 * counts nothing), forgetting those not seen in `windowMs`; at most `cap` are kept.
 */
export function observeCountry(
  state: SubjectState,
  country: string,
  now: number,
  windowMs: number,
  cap: number,
): number {
  const since = now - windowMs
  for (const [c, at] of state.countries) if (at <= since) state.countries.delete(c)
  if (country !== '' && (state.countries.has(country) || state.countries.size < cap)) {
    state.countries.set(country, now)
  }
  return state.countries.size
}

/** Countries kept per key: one more than its highest country threshold. */
export function countryCapacity(o: { countriesAt: number; blockCountriesAt: number }): number {
  return Math.min(MAX_ENTRIES, Math.max(o.countriesAt, o.blockCountriesAt) + 1)
}

/** The level a key's country count reaches (thresholds 0 = off). */
export function countryLevel(n: number, alertAt: number, blockAt: number): number {
  if (blockAt > 0 && n >= blockAt) return BLOCK
  if (alertAt > 0 && n >= alertAt) return 1
  return 0
}

export function emptyHistory(): AddressHistory {
  return { e: -1, p: 0, x: 0, b: 0, n: 0 }
}

export interface LearnParams {
  windowMs: number
  /** 0 = learning off. */
  factor: number
  minAddresses: number
  warmup: number
  /** Per window the key is used in: the baseline's decay (0.5 ** (window / halfLife)). */
  keep: number
}

/**
 * Moves the history to the window of `now` — a finished window that did not alert teaches the
 * baseline its peak (a plain mean over the first windows, then a decayed average), so a leak
 * never becomes the key's normal — and notes `count`. Returns the learned threshold, 0 while
 * warming up or when learning is off.
 */
export function learnAddresses(h: AddressHistory, count: number, now: number, p: LearnParams): number {
  const w = Math.floor(now / p.windowMs)
  if (w !== h.e) {
    if (h.e >= 0 && h.p > 0 && h.x === 0) {
      h.n = Math.min(h.n + 1, 1_000_000)
      h.b += (h.p - h.b) * Math.max(1 / h.n, 1 - p.keep)
    }
    h.e = w
    h.p = 0
    h.x = 0
  }
  if (count > h.p) h.p = count
  if (p.factor <= 0 || h.n < p.warmup || h.n === 0) return 0
  return Math.max(p.minAddresses, Math.ceil(p.factor * h.b - 1e-9))
}

/** Addresses kept per key: one more than its highest threshold. */
export function addressCapacity(o: { alertAt: number; blockAt: number }): number {
  return Math.min(MAX_ENTRIES, Math.max(o.alertAt, o.blockAt) + 1)
}

// ------------------------------------------------------------------ the throttle

/**
 * Whether a throttled subject may make one more request this minute (`perMinute`), counting it
 * when it may; else how long until the next minute.
 */
export function throttleGate(state: SubjectState, now: number, perMinute: number): number {
  const minute = Math.floor(now / 60_000)
  if (state.rm !== minute) {
    state.rm = minute
    state.rn = 0
  }
  if (state.rn < perMinute) {
    state.rn++
    return 0
  }
  return (minute + 1) * 60_000 - now
}

// ------------------------------------------------------------------ spend velocity

export interface SpendParams {
  factor: number
  bucketMs: number
  /** Buckets in a row a spike must last (sustainMs / bucketMs, rounded up). */
  sustain: number
  /** Per bucket: the baseline's decay (1 − alpha) and its floor. */
  keep: number
  floor: number
}

/** Moves the spend state to the bucket of `now`: the finished bucket joins the baseline unless it was a spike. */
export function rollSpend(s: SpendState, now: number, p: SpendParams): void {
  const bucket = Math.floor(now / p.bucketMs)
  if (s.m < 0) {
    s.m = bucket
    s.s = 0
    s.h = 0
    return
  }
  if (bucket <= s.m) return
  const wasSpike = s.s >= p.factor * Math.max(s.b, p.floor)
  if (!wasSpike) s.b = s.b * p.keep + s.s * (1 - p.keep)
  const gap = bucket - s.m - 1
  if (gap > 0) s.b *= p.keep ** gap
  s.h = wasSpike && gap === 0 ? s.h + 1 : 0
  s.m = bucket
  s.s = 0
}

/** Adds spend now; says whether this bucket is a spike and the spike has lasted `sustain` buckets. */
export function recordSpend(
  s: SpendState,
  amount: number,
  now: number,
  p: SpendParams,
): { rate: number; baseline: number; sustained: boolean } {
  rollSpend(s, now, p)
  s.s += amount
  const baseline = Math.max(s.b, p.floor)
  const sustained = s.s >= p.factor * baseline && s.h + 1 >= p.sustain
  return { rate: s.s, baseline, sustained }
}

/** A held subject may spend up to its baseline per bucket: 0 when it may go on, else ms until the next bucket. */
export function holdGate(s: SpendState, now: number, p: SpendParams): number {
  rollSpend(s, now, p)
  if (s.s < Math.max(s.b, p.floor)) return 0
  return (s.m + 1) * p.bucketMs - now
}

// ------------------------------------------------------------------ slow scraping

/**
 * Notes the subject's share of its most used limit; returns for how many buckets in a row
 * (this one included) it has been at `share` or above, 0 when this bucket has not been.
 */
export function observeScrape(
  c: ScrapeState,
  used: number,
  now: number,
  bucketMs: number,
  share: number,
): number {
  const bucket = Math.floor(now / bucketMs)
  if (bucket !== c.m) {
    c.c = c.m >= 0 && bucket === c.m + 1 && c.hi === 1 ? c.c + 1 : 0
    c.m = bucket
    c.hi = 0
  }
  if (used >= share) c.hi = 1
  return c.hi === 1 ? c.c + 1 : 0
}

/** A subject the scraping detector throttles: refused for the rest of a bucket that already found it at the limit. */
export function scrapeGate(c: ScrapeState, now: number, bucketMs: number): number {
  const bucket = Math.floor(now / bucketMs)
  if (c.m !== bucket || c.hi !== 1) return 0
  return (bucket + 1) * bucketMs - now
}
