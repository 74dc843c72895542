/**
 * Cheap fingerprints of a prompt for loop detection: a hash of the normalised text (the same
 * request again) and a 64-bit SimHash over word shingles (nearly the same request), kept as two
 * unsigned 32-bit halves so that Redis Lua (32-bit `bit` operations) compares them the same way.
 */
import { isSpace } from '../whitespace.js'

/** Lower case, whitespace collapsed, trimmed: what "the same prompt" means. */
export function normalisePrompt(text: string): string {
  return text.toLowerCase().replace(/\s+/g, ' ').trim()
}

/**
 * FNV-1a over UTF-16 code units, 32-bit, unsigned. The state is kept signed (`| 0`) and made
 * unsigned once at the end: an unsigned value above 2^31 is a double to V8, and a loop carrying
 * one converts it at every step (the hashes here cost about twice as many instructions so).
 */
export function fnv1a(text: string, seed = 0x811c9dc5): number {
  let h = seed | 0
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193)
  return h >>> 0
}

/** A 64-bit hash of normalised text, as 16 hex digits. */
export function promptHash(normalised: string): string {
  const a = fnv1a(normalised)
  const b = fnv1a(normalised, 0x9747b28c)
  return hex16(a, b)
}

const HEX = [48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 97, 98, 99, 100, 101, 102]

/** Two unsigned 32-bit numbers as 16 lower-case hex digits (a tenth of toString(16) + padStart). */
function hex16(a: number, b: number): string {
  return String.fromCharCode(
    HEX[a >>> 28]!,
    HEX[(a >>> 24) & 15]!,
    HEX[(a >>> 20) & 15]!,
    HEX[(a >>> 16) & 15]!,
    HEX[(a >>> 12) & 15]!,
    HEX[(a >>> 8) & 15]!,
    HEX[(a >>> 4) & 15]!,
    HEX[a & 15]!,
    HEX[b >>> 28]!,
    HEX[(b >>> 24) & 15]!,
    HEX[(b >>> 20) & 15]!,
    HEX[(b >>> 16) & 15]!,
    HEX[(b >>> 12) & 15]!,
    HEX[(b >>> 8) & 15]!,
    HEX[(b >>> 4) & 15]!,
    HEX[b & 15]!,
  )
}

/**
 * A word's contribution to its shingles' hashes: its FNV-1a hash, premixed as MurmurHash3 mixes
 * a 32-bit block before it enters the hash (the same for every shingle and seed, so done once).
 */
function wordBlock(wordHash: number): number {
  const k = Math.imul(wordHash, 0xcc9e2d51)
  return Math.imul((k << 15) | (k >>> 17), 0x1b873593)
}

/**
 * MurmurHash3 (x86, 32-bit) with `seed` of the blocks `blocks[first .. first + count)` (each
 * wordBlock() of a word's hash): a shingle's hash from its words' hashes. Signed (int32).
 */
function shingleHash(blocks: Int32Array, first: number, count: number, seed: number): number {
  let h = seed | 0
  for (let w = first; w < first + count; w++) {
    h ^= blocks[w]!
    h = (Math.imul((h << 13) | (h >>> 19), 5) + 0xe6546b64) | 0
  }
  h ^= 4 * count
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b)
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35)
  return h ^ (h >>> 16)
}

/** At most this many shingles are hashed: a long prompt costs no more than this. */
export const MAX_SHINGLES = 512
/** Seeds of a shingle's two 32-bit hashes: the SimHash's low and high half. */
const LO_SEED = 0x811c9dc5
const HI_SEED = 0x5bd1e995

/**
 * SimHash of normalised text over 3-word shingles (the whole text when it has 3 words or fewer;
 * the first MAX_SHINGLES): near texts differ in few bits. A shingle's 64 bits are MurmurHash3 of
 * its words' FNV-1a hashes with two seeds; a bit is set when more than half the shingles have it.
 * The definition, written plainly; fingerprint() computes the same in one pass over the text.
 */
export function simHash(normalised: string): { hi: number; lo: number } {
  const words = normalised === '' ? [] : normalised.split(' ')
  const blocks = Int32Array.from(words, (w) => wordBlock(fnv1a(w)))
  const shingles = words.length <= 3 ? (words.length === 0 ? 0 : 1) : Math.min(words.length - 2, MAX_SHINGLES)
  const size = Math.min(words.length, 3)
  const votes = new Int32Array(64)
  for (let i = 0; i < shingles; i++) {
    const lo = shingleHash(blocks, i, size, LO_SEED)
    const hi = shingleHash(blocks, i, size, HI_SEED)
    for (let bit = 0; bit < 32; bit++) {
      votes[bit]! += (lo >>> bit) & 1
      votes[bit + 32]! += (hi >>> bit) & 1
    }
  }
  let hi = 0
  let lo = 0
  for (let bit = 0; bit < 32; bit++) {
    if (2 * votes[bit]! > shingles) lo |= 1 << bit
    if (2 * votes[bit + 32]! > shingles) hi |= 1 << bit
  }
  return { hi: hi >>> 0, lo: lo >>> 0 }
}

/** Set bits of the 32 bits of `x` (signed or not: int32 arithmetic throughout, no doubles). */
function popcount32(x: number): number {
  let v = x | 0
  v = (v - ((v >>> 1) & 0x55555555)) | 0
  v = ((v & 0x33333333) + ((v >>> 2) & 0x33333333)) | 0
  return Math.imul((v + (v >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24
}

/** Bits in which two SimHashes differ (0..64). */
export function hamming(a: { hi: number; lo: number }, b: { hi: number; lo: number }): number {
  return bitsApart(a.hi, a.lo, b.hi, b.lo)
}

/** hamming() of two SimHashes given by their halves. */
export function bitsApart(aHi: number, aLo: number, bHi: number, bLo: number): number {
  return popcount32(aHi ^ bHi) + popcount32(aLo ^ bLo)
}

/** Words whose hashes fingerprint() keeps: those of the first MAX_SHINGLES shingles. */
const MAX_WORDS = MAX_SHINGLES + 2
/** Scratch for fingerprint(): each word's wordBlock(), in order. */
const BLOCKS = new Int32Array(MAX_WORDS)
/** Bits of a count of shingles (at most MAX_SHINGLES = 512: 10 bits). */
const PLANES = 10
/**
 * Scratch for a long prompt's SimHash: per SimHash bit, how many shingle hashes had it set, kept
 * bit-sliced — word k holds bit k of the 32 counts of the low half (k < PLANES) and of the high
 * half (PLANES + k).
 */
const COUNTS = new Int32Array(2 * PLANES)
/**
 * Scratch: the fingerprint fingerprintInto() made last, as int32 — the prompt hash's halves (the
 * first 8 and the last 8 hex digits) and the SimHash's high and low halves.
 */
export const FINGERPRINT = new Int32Array(4)

/**
 * One pass over the text `first`, then each of `more` after a newline (none: `first` alone): the
 * blocks of its words' hashes (the first MAX_WORDS) into BLOCKS, the prompt hash's halves into
 * FINGERPRINT; answers the number of words. Read as lower-cased where it is ASCII; with `raw`, a
 * code unit above ASCII answers -1 (the caller lower-cases the whole text with toLowerCase, whose
 * Unicode mappings may change its length, and scans that). Each string is best flat (reading a
 * concatenation's characters costs several times more): `more` spares the caller joining them.
 * ASCII white space is told inline (isSpace(), an imported binding, is checked at every call).
 */
function scan(first: string, more: readonly string[] | undefined, raw: boolean): number {
  const blocks = BLOCKS
  const parts = more === undefined ? 0 : more.length
  let words = 0
  // Signed, as in fnv1a: the same bits without a double in the loop.
  let a = 0x811c9dc5 | 0
  let b = 0x9747b28c | 0
  for (let p = -1; p < parts; p++) {
    const s = p < 0 ? first : more![p]!
    const n = s.length
    let i = 0
    // Between words: white space is skipped. A part ends a word (the newline before the next),
    // so no word spans two parts, and where the code is says whether a word is being read.
    while (i < n) {
      let c = s.charCodeAt(i++)
      if (c <= 32) {
        if (c === 32 || (c - 9) >>> 0 < 5) continue
      } else if (c >= 0x80) {
        if (raw) return -1
        if (isSpace(c)) continue
      }
      if (words > 0) {
        a = Math.imul(a ^ 32, 0x01000193)
        b = Math.imul(b ^ 32, 0x01000193)
      }
      let w = 0x811c9dc5 | 0
      // A word: its characters up to white space or the part's end. A letter above ASCII is
      // lower-cased already (raw: none is read).
      for (;;) {
        if ((c - 65) >>> 0 < 26) c += 32
        a = Math.imul(a ^ c, 0x01000193)
        b = Math.imul(b ^ c, 0x01000193)
        w = Math.imul(w ^ c, 0x01000193)
        if (i >= n) break
        c = s.charCodeAt(i++)
        if (c <= 32) {
          if (c === 32 || (c - 9) >>> 0 < 5) break
        } else if (c >= 0x80) {
          if (raw) return -1
          if (isSpace(c)) break
        }
      }
      if (words < MAX_WORDS) blocks[words] = wordBlock(w)
      words++
    }
  }
  FINGERPRINT[0] = a
  FINGERPRINT[1] = b
  return words
}

/**
 * The bits whose count (from word `at` of COUNTS on) is above `half`: a bit-sliced comparison,
 * from the highest bit of the counts down.
 */
function above(counts: Int32Array, at: number, half: number): number {
  let greater = 0
  let equal = -1
  for (let k = PLANES - 1; k >= 0; k--) {
    const plane = counts[at + k]!
    if ((half >>> k) & 1) equal &= plane
    else {
      greater |= equal & plane
      equal &= ~plane
    }
  }
  return greater
}

/** shingleHash() of three blocks (int32), `seed` an int32. */
function shingle3(b0: number, b1: number, b2: number, seed: number): number {
  let h = seed ^ b0
  h = (Math.imul((h << 13) | (h >>> 19), 5) + 0xe6546b64) ^ b1
  h = (Math.imul((h << 13) | (h >>> 19), 5) + 0xe6546b64) ^ b2
  h = ((Math.imul((h << 13) | (h >>> 19), 5) + 0xe6546b64) ^ 12) | 0
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b)
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35)
  return h ^ (h >>> 16)
}

/** The carry out of a bit-sliced plane `p` plus a constant's bit (`one` non-zero: 1), carry in `c`. */
function carry(p: number, one: number, c: number): number {
  return one !== 0 ? p | c : p & c
}

/** Shingles counted in local variables before they are added to COUNTS (4 bits of count). */
const CHUNK = 15

/**
 * Adds a chunk's counts (bit-sliced, planes `p0`..`p3`) to the counts from word `at` of COUNTS on.
 */
function addChunk(counts: Int32Array, at: number, p0: number, p1: number, p2: number, p3: number): void {
  let c = 0
  for (let k = 0; k < PLANES; k++) {
    const x = k === 0 ? p0 : k === 1 ? p1 : k === 2 ? p2 : k === 3 ? p3 : 0
    const s = counts[at + k]!
    counts[at + k] = s ^ x ^ c
    c = (s & x) | (c & (s ^ x))
  }
}

/**
 * The SimHash of `words` words' blocks (BLOCKS), 4 words or more, into FINGERPRINT[2] (high half)
 * and [3] (low half): a bit is set when more than half the shingles have it. Per SimHash bit, how
 * many shingle hashes had it set is counted bit-sliced: plane k holds bit k of the 32 counts of a
 * half. Up to CHUNK shingles are counted in local variables (l0..l3 the low half's planes, h0..h3
 * the high half's): adding a hash is a carry ripple over four of them, where a typed array's
 * checks cost more than the ripple. A prompt of at most CHUNK shingles is decided from them (a
 * count is above `half` when adding 15 − half carries out of bit 3); a longer one adds each chunk
 * to COUNTS (10 planes: at most MAX_SHINGLES = 512).
 */
function simHashOfBlocks(words: number): void {
  const blocks = BLOCKS
  const counts = COUNTS
  const shingles = Math.min(words - 2, MAX_SHINGLES)
  if (shingles > CHUNK) counts.fill(0)
  let b0 = blocks[0]!
  let b1 = blocks[1]!
  for (let from = 0; from < shingles; from += CHUNK) {
    const to = Math.min(from + CHUNK, shingles)
    let l0 = 0
    let l1 = 0
    let l2 = 0
    let l3 = 0
    let h0 = 0
    let h1 = 0
    let h2 = 0
    let h3 = 0
    for (let i = from; i < to; i++) {
      const b2 = blocks[i + 2]!
      // The seeds as literals (LO_SEED, HI_SEED): a module constant above 2^31 is a double, read
      // and converted at every use.
      let x = shingle3(b0, b1, b2, 0x811c9dc5 | 0)
      let c = l0 & x
      l0 ^= x
      x = l1 & c
      l1 ^= c
      l3 ^= l2 & x
      l2 ^= x
      x = shingle3(b0, b1, b2, 0x5bd1e995)
      c = h0 & x
      h0 ^= x
      x = h1 & c
      h1 ^= c
      h3 ^= h2 & x
      h2 ^= x
      b0 = b1
      b1 = b2
    }
    if (shingles <= CHUNK) {
      const k = CHUNK - (shingles >>> 1)
      FINGERPRINT[2] = carry(h3, k & 8, carry(h2, k & 4, carry(h1, k & 2, carry(h0, k & 1, 0))))
      FINGERPRINT[3] = carry(l3, k & 8, carry(l2, k & 4, carry(l1, k & 2, carry(l0, k & 1, 0))))
      return
    }
    addChunk(counts, 0, l0, l1, l2, l3)
    addChunk(counts, PLANES, h0, h1, h2, h3)
  }
  const half = shingles >>> 1
  FINGERPRINT[2] = above(counts, PLANES, half)
  FINGERPRINT[3] = above(counts, 0, half)
}

/**
 * fingerprint() as numbers, into FINGERPRINT (read it before the next call): no string made.
 */
export function fingerprintInto(text: string, more?: readonly string[]): void {
  let words = scan(text, more, true)
  if (words < 0)
    words = scan((more === undefined ? text : [text, ...more].join('\n')).toLowerCase(), undefined, false)
  if (words > 3) simHashOfBlocks(words)
  else {
    // One shingle of all the words (none: no shingle, no bit set): each bit is its hash's.
    FINGERPRINT[2] = words === 0 ? 0 : shingleHash(BLOCKS, 0, words, HI_SEED)
    FINGERPRINT[3] = words === 0 ? 0 : shingleHash(BLOCKS, 0, words, LO_SEED)
  }
}

/** The prompt hash of halves `h0`, `h1` (int32, as FINGERPRINT holds them) as 16 hex digits. */
export function hashText(h0: number, h1: number): string {
  return hex16(h0 >>> 0, h1 >>> 0)
}

/**
 * The int32 that hashText() writes as the 8 hex digits of `hash` from `from` on: a prompt hash's
 * half. A digit that is not one of 0-9a-f (as promptHash() writes them) is an error: two hashes
 * are compared by their halves.
 */
export function hashHalf(hash: string, from: number): number {
  let x = 0
  let bad = hash.length === 16 ? 0 : -1
  for (let i = from; i < from + 8; i++) {
    const c = hash.charCodeAt(i)
    const d = c <= 57 ? c - 48 : c - 87
    // A digit below 0 or a letter past f (or between 9 and a) sets a bit above 0-15.
    bad |= c >= 97 || c <= 57 ? d : -1
    x = (x << 4) | (d & 15)
  }
  if ((bad & ~15) !== 0) throw new Error(`a prompt hash is 16 hex digits, got ${JSON.stringify(hash)}`)
  return x
}

/**
 * Both fingerprints of a prompt: `promptHash` and `simHash` of `normalisePrompt(text)`, in one
 * pass — with `more`, of `[text, ...more].join('\n')`, read part by part and not joined. The
 * words of the lower-cased text (the normalised text is they joined by one space) are found, and
 * the prompt hash and each word's hash computed, as the text is read; the shingles are hashed
 * from their words' hashes, each word's characters read once, not six times (three shingles, two
 * seeds). An ASCII text is lower-cased as it is read; another is lower-cased first
 * (toLowerCase). No string is made but the hash's digits (and the lower-cased text, when not
 * ASCII); test/core/sketch.test.ts holds the results equal to the definition.
 */
export function fingerprint(
  text: string,
  more?: readonly string[],
): { hash: string; hi: number; lo: number } {
  fingerprintInto(text, more)
  const f = FINGERPRINT
  return { hash: hex16(f[0]! >>> 0, f[1]! >>> 0), hi: f[2]! >>> 0, lo: f[3]! >>> 0 }
}
