/**
 * A subject's loop fingerprints, newest first, at most `capacity`, and the count observeLoop
 * makes over them per request: how many have a given hash, how many a SimHash within a few bits.
 * The numbers lie in typed arrays (a ring: adding one moves nothing) with an index per key, so
 * that a count visits the entries that can match, not all of them.
 */
import { bitsApart, fnv1a } from './sketch.js'

export interface LoopEntry {
  at: number
  hash: string
  hi: number
  lo: number
}

/** The numbers of an empty ring, shared (never written: the first add resizes). */
const NO_TIMES = new Float64Array(0)
const NO_BITS = new Int32Array(0)
const NO_SLOTS = new Int16Array(0)

/**
 * Keys an entry is indexed by: its SimHash's four 16-bit quarters (within 3 bits, two SimHashes
 * share one of them at least: pigeonhole) and its hash's digest.
 */
const KEYS = 5
const DIGEST = 4

/** The key `k` of an entry of SimHash halves `hi`, `lo` (int32) and digest `d`. */
function keyOf(k: number, hi: number, lo: number, d: number): number {
  switch (k) {
    case 0:
      return hi & 0xffff
    case 1:
      return hi >>> 16
    case 2:
      return lo & 0xffff
    case 3:
      return lo >>> 16
    default:
      return d
  }
}

/**
 * The ring. Each hash comes with a 32-bit digest of it: hashes are compared only when their
 * digests are equal. The 32-bit numbers (SimHash halves, digest) are kept apart from the times, as
 * int32: read from a Float64Array each was a double to convert before its bits could be compared.
 *
 * The index: per key, buckets of slots whose key hashes alike, each a chain from its newest slot
 * down through older ones (`links`). A slot is reused only for a new entry once its own is the
 * oldest kept — the last of every chain it is in — so a chain is read newest first while the
 * entries' ages rise and are within the kept ones; a slot whose age does not rise was reused,
 * and ends it. Counting visits the few slots of one bucket per key (most requests match none),
 * not every kept entry (~45 instructions each at 91).
 */
export class LoopEntries {
  /** Fingerprints kept. */
  length = 0
  /** The newest one's slot. */
  private head = -1
  /** Per slot: its time. */
  private times = NO_TIMES
  /** Per slot: SimHash hi, SimHash lo, the hash's digest (int32: the same bits, signed). */
  private bits = NO_BITS
  private hashes: string[] = []
  /** Whether the times fall from the newest on (false once a clock went back, until emptied). */
  private ordered = true
  /** Per key and bucket: its newest slot (-1: none); per key and slot: the next older slot of its bucket. */
  private heads = NO_SLOTS
  private links = NO_SLOTS
  /** Buckets per key (a power of two) and the shift that makes a key's hash a bucket. */
  private buckets = 0
  private shift = 32
  /** Slots written since the ring was made (0 .. filled - 1). */
  private filled = 0

  get capacity(): number {
    return this.hashes.length
  }

  /** The `i`-th newest (0: the newest). */
  at(i: number): LoopEntry {
    const slot = this.slot(i)
    const b = this.bits
    return {
      at: this.times[slot]!,
      hash: this.hashes[slot]!,
      hi: b[3 * slot]! >>> 0,
      lo: b[3 * slot + 1]! >>> 0,
    }
  }

  private slot(i: number): number {
    const s = this.head - i
    return s < 0 ? s + this.capacity : s
  }

  /** How many entries are newer than the one in `slot` (0: the newest). */
  private age(slot: number): number {
    const a = this.head - slot
    return a < 0 ? a + this.capacity : a
  }

  private bucketOf(key: number): number {
    return Math.imul(key, 0x9e3779b1) >>> this.shift
  }

  /** Adds the newest entry, keeping at most `max` (the oldest go); `digest` is fnv1a(e.hash). */
  add(e: LoopEntry, max: number, digest = fnv1a(e.hash)): void {
    if (max !== this.capacity) this.resize(max)
    if (this.length === 0) this.ordered = true
    else if (e.at < this.times[this.head]!) this.ordered = false
    const slot = this.head + 1 === max ? 0 : this.head + 1
    const b = this.bits
    const hi = e.hi | 0
    const lo = e.lo | 0
    const d = digest | 0
    const buckets = this.buckets
    const heads = this.heads
    const links = this.links
    // Slots are first filled in order: one below `filled` holds an entry, in the buckets of its keys.
    const used = slot < this.filled
    if (!used) this.filled = slot + 1
    for (let k = 0; k < KEYS; k++) {
      // The entry this slot held (the oldest) leaves its buckets: a head on it is dropped, and a
      // link to it from an older chain member is ended by the age test when read.
      if (used) {
        const was = k * buckets + this.bucketOf(keyOf(k, b[3 * slot]!, b[3 * slot + 1]!, b[3 * slot + 2]!))
        if (heads[was] === slot) heads[was] = -1
      }
      const at = k * buckets + this.bucketOf(keyOf(k, hi, lo, d))
      links[k * max + slot] = heads[at]!
      heads[at] = slot
    }
    this.head = slot
    this.times[slot] = e.at
    b[3 * slot] = hi
    b[3 * slot + 1] = lo
    b[3 * slot + 2] = d
    this.hashes[slot] = e.hash
    if (this.length < max) this.length++
  }

  private resize(max: number): void {
    const keep = Math.min(this.length, max)
    const kept = Array.from({ length: keep }, (_, i) => this.at(keep - 1 - i))
    this.times = new Float64Array(max)
    this.bits = new Int32Array(3 * max)
    this.hashes = new Array<string>(max).fill('')
    // About two slots a bucket: a short chain to read, two bytes a bucket and key (a bucket a
    // slot counted ~0.2k fewer instructions at 91, for 640 bytes more a subject).
    let bits = 2
    while (1 << (bits + 1) < max) bits++
    this.buckets = 1 << bits
    this.shift = 32 - bits
    this.heads = new Int16Array(KEYS * this.buckets).fill(-1)
    this.links = new Int16Array(KEYS * max)
    this.head = -1
    this.length = 0
    this.filled = 0
    for (const e of kept) this.add(e, max)
  }

  /**
   * Among the entries from the newest on while they are later than `since`: how many have the
   * hash `hash` (whose fnv1a is `digest`), and how many a SimHash within `distance` bits of
   * (`hi`, `lo`) (0: none counted). The older ones are forgotten.
   */
  count(since: number, hash: string, digest: number, hi: number, lo: number, distance: number) {
    const live = this.liveAfter(since)
    this.length = live
    const b = this.bits
    const h = hi | 0
    const l = lo | 0
    const d = digest | 0
    const within = distance | 0
    let exact = 0
    for (let s = this.first(DIGEST, d), age = -1; s >= 0; s = this.links[DIGEST * this.capacity + s]!) {
      const a = this.age(s)
      if (a <= age || a >= live) break
      age = a
      if (b[3 * s + 2] === d && this.hashes[s] === hash) exact++
    }
    if (within <= 0) return { exact, near: 0 }
    if (within >= 4) return { exact, near: this.nearAll(live, h, l, within) }
    // Each entry sharing a quarter is met in that quarter's bucket: counted in the first quarter
    // it shares, passed over in the later ones.
    let near = 0
    for (let k = 0; k < DIGEST; k++) {
      const key = keyOf(k, h, l, d)
      for (let s = this.first(k, key), age = -1; s >= 0; s = this.links[k * this.capacity + s]!) {
        const a = this.age(s)
        if (a <= age || a >= live) break
        age = a
        const x = b[3 * s]! ^ h
        const y = b[3 * s + 1]! ^ l
        if (keyOf(k, x, y, 0) !== 0) continue
        if (k > 0 && (x & 0xffff) === 0) continue
        if (k > 1 && x >>> 16 === 0) continue
        if (k > 2 && (y & 0xffff) === 0) continue
        if (bitsApart(x, y, 0, 0) <= within) near++
      }
    }
    return { exact, near }
  }

  /** The newest slot of key `k`'s bucket of `key` (-1: none). */
  private first(k: number, key: number): number {
    return this.buckets === 0 ? -1 : this.heads[k * this.buckets + this.bucketOf(key)]!
  }

  /** The near count at 4 bits or more, where sharing a quarter says nothing: every live entry. */
  private nearAll(live: number, h: number, l: number, within: number): number {
    const b = this.bits
    let near = 0
    for (let i = 0; i < live; i++) {
      const s = this.slot(i)
      if (bitsApart(b[3 * s]!, b[3 * s + 1]!, h, l) <= within) near++
    }
    return near
  }

  /** How many entries from the newest on are later than `since`. */
  private liveAfter(since: number): number {
    const times = this.times
    if (!this.ordered) {
      let k = 0
      while (k < this.length && times[this.slot(k)]! > since) k++
      return k
    }
    // Times fall from the newest on: a binary search finds where they reach `since`.
    let low = 0
    let high = this.length
    while (low < high) {
      const mid = (low + high) >>> 1
      if (times[this.slot(mid)]! > since) low = mid + 1
      else high = mid
    }
    return low
  }
}
