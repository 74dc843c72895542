/**
 * A subject's loop fingerprints, newest first, at most `capacity`, and the count observeLoop
 * makes over them per request: how many have a given hash, how many a SimHash within a few bits.
 * The numbers lie in typed arrays (a ring: adding one moves nothing) with an index per key, so
 * that a count visits the entries that can match, not all of them.
 */
import { bitsApart, hashHalf, hashText } from './sketch.js'

export interface LoopEntry {
  at: number
  /** The prompt hash: 16 lower-case hex digits (promptHash()). */
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
 * share one of them at least: pigeonhole) and, as key 4, its hash's first half.
 */
const KEYS = 5
/** Int32s a slot keeps: SimHash hi, SimHash lo, the hash's halves. */
const WIDTH = 4

/**
 * The key `k` of an entry of SimHash halves `hi`, `lo` (int32) and hash's first half `d`; its
 * bucket is the top bits of key × 0x9e3779b1 (`shift`).
 */
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
 * The ring. Each entry's numbers — SimHash halves and the prompt hash's two 32-bit halves — lie
 * in one Int32Array, apart from the times (read from a Float64Array each was a double to convert
 * before its bits could be compared); no string is kept (a hash string, kept for as many calls as
 * the ring holds, outlived the young generation: old garbage for full collections to mark and
 * sweep). Two hashes are the same when both halves are.
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
  /** Per slot (WIDTH each): SimHash hi, SimHash lo, the hash's halves (int32: the same bits, signed). */
  private bits = NO_BITS
  /** Slots. */
  private cap = 0
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
    return this.cap
  }

  /** The `i`-th newest (0: the newest). */
  at(i: number): LoopEntry {
    const slot = this.slot(i)
    const b = this.bits
    const o = WIDTH * slot
    return {
      at: this.times[slot]!,
      hash: hashText(b[o + 2]!, b[o + 3]!),
      hi: b[o]! >>> 0,
      lo: b[o + 1]! >>> 0,
    }
  }

  private slot(i: number): number {
    const s = this.head - i
    return s < 0 ? s + this.cap : s
  }

  /** Adds the newest entry, keeping at most `max` (the oldest go). */
  add(e: LoopEntry, max: number): void {
    this.push(e.at, hashHalf(e.hash, 0), hashHalf(e.hash, 8), e.hi, e.lo, max)
  }

  /**
   * Adds the newest entry — at `at`, of prompt hash halves `h0`, `h1` and SimHash halves `hi`,
   * `lo` — keeping at most `max` (the oldest go).
   */
  push(at: number, h0: number, h1: number, hi: number, lo: number, max: number): void {
    if (max !== this.cap) this.resize(max)
    if (this.length === 0) this.ordered = true
    else if (at < this.times[this.head]!) this.ordered = false
    const slot = this.head + 1 === max ? 0 : this.head + 1
    const b = this.bits
    // Literals for WIDTH and KEYS, and the fields in locals (see count()).
    const o = 4 * slot
    const shift = this.shift
    const h = hi | 0
    const l = lo | 0
    const d = h0 | 0
    const buckets = this.buckets
    const heads = this.heads
    const links = this.links
    // Slots are first filled in order: one below `filled` holds an entry, in the buckets of its keys.
    const used = slot < this.filled
    if (!used) this.filled = slot + 1
    const oldHi = b[o]!
    const oldLo = b[o + 1]!
    const oldD = b[o + 2]!
    for (let k = 0; k < 5; k++) {
      // The entry this slot held (the oldest) leaves its buckets: a head on it is dropped, and a
      // link to it from an older chain member is ended by the age test when read.
      if (used) {
        const was = k * buckets + (Math.imul(keyOf(k, oldHi, oldLo, oldD), 0x9e3779b1) >>> shift)
        if (heads[was] === slot) heads[was] = -1
      }
      const i = k * buckets + (Math.imul(keyOf(k, h, l, d), 0x9e3779b1) >>> shift)
      links[k * max + slot] = heads[i]!
      heads[i] = slot
    }
    this.head = slot
    this.times[slot] = at
    b[o] = h
    b[o + 1] = l
    b[o + 2] = d
    b[o + 3] = h1 | 0
    if (this.length < max) this.length++
  }

  private resize(max: number): void {
    const keep = Math.min(this.length, max)
    const kept = Array.from({ length: keep }, (_, i) => this.at(keep - 1 - i))
    this.times = new Float64Array(max)
    this.bits = new Int32Array(WIDTH * max)
    this.cap = max
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
   * For the newest entry (the one just pushed), among the entries from the newest on while they
   * are later than `since`: how many have its prompt hash, and how many a SimHash within
   * `distance` bits of its own (0: none counted). The older ones are forgotten.
   *
   * The newest entry heads every chain it is in: each count starts after it, with it counted
   * (when it is live), instead of finding its buckets again. Numbers are literals and fields are
   * read once into locals (a module constant or a field read in a loop is a load and a check
   * each time): 4 is WIDTH, and key 4's links start at 4 * cap.
   */
  countNewest(since: number, distance: number): { exact: number; near: number } {
    const live = this.liveAfter(since)
    this.length = live
    if (live === 0) return { exact: 0, near: 0 }
    const b = this.bits
    const links = this.links
    const cap = this.cap
    const head = this.head
    const h = b[4 * head]!
    const l = b[4 * head + 1]!
    const d = b[4 * head + 2]!
    const e = b[4 * head + 3]!
    const within = distance | 0
    // A chain is read newest first while the entries' ages rise and are among the live ones.
    let exact = 1
    for (let s = links[4 * cap + head]!, age = 0; s >= 0; s = links[4 * cap + s]!) {
      const a = head - s < 0 ? head - s + cap : head - s
      if (a <= age || a >= live) break
      age = a
      if (b[4 * s + 2] === d && b[4 * s + 3] === e) exact++
    }
    if (within <= 0) return { exact, near: 0 }
    if (within >= 4) return { exact, near: this.nearAll(live, h, l, within) }
    // Each entry sharing a quarter is met in that quarter's bucket: counted in the first quarter
    // it shares, passed over in the later ones (the newest shares the first).
    let near = 1
    for (let k = 0; k < 4; k++) {
      for (let s = links[k * cap + head]!, age = 0; s >= 0; s = links[k * cap + s]!) {
        const a = head - s < 0 ? head - s + cap : head - s
        if (a <= age || a >= live) break
        age = a
        const x = b[4 * s]! ^ h
        const y = b[4 * s + 1]! ^ l
        if (keyOf(k, x, y, 0) !== 0) continue
        if (k > 0 && (x & 0xffff) === 0) continue
        if (k > 1 && x >>> 16 === 0) continue
        if (k > 2 && (y & 0xffff) === 0) continue
        if (bitsApart(x, y, 0, 0) <= within) near++
      }
    }
    return { exact, near }
  }

  /** The near count at 4 bits or more, where sharing a quarter says nothing: every live entry. */
  private nearAll(live: number, h: number, l: number, within: number): number {
    const b = this.bits
    let near = 0
    for (let i = 0; i < live; i++) {
      const s = this.slot(i)
      if (bitsApart(b[4 * s]!, b[4 * s + 1]!, h, l) <= within) near++
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
    // Times fall from the newest on: most often every kept entry is inside the window, as the
    // oldest says; else a binary search finds where they reach `since`.
    const n = this.length
    if (n === 0 || times[this.slot(n - 1)]! > since) return n
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
