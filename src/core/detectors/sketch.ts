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
 * Scratch for fingerprint(): per SimHash bit, how many shingle hashes had it set, kept
 * bit-sliced — word k holds bit k of the 32 counts of the low half (k < PLANES) and of the high
 * half (PLANES + k) — so that adding a hash is a carry ripple over a few words, not 64 counters.
 */
const COUNTS = new Int32Array(2 * PLANES)
/** Scratch for scan(): the prompt hash's two halves, signed. */
const HASHES = new Int32Array(2)

/**
 * One pass over the text `first`, then each of `more` after a newline (none: `first` alone): the
 * blocks of its words' hashes (the first MAX_WORDS) into BLOCKS, the prompt hash's halves into
 * HASHES; answers the number of words. Read as lower-cased where it is ASCII; with `raw`, a
 * code unit above ASCII answers -1 (the caller lower-cases the whole text with toLowerCase, whose
 * Unicode mappings may change its length, and scans that). Each string is best flat (reading a
 * concatenation's characters costs several times more): `more` spares the caller joining them.
 */
function scan(first: string, more: readonly string[] | undefined, raw: boolean): number {
  const blocks = BLOCKS
  const parts = more === undefined ? 0 : more.length
  let words = 0
  let inWord = false
  // Signed, as in fnv1a: the same bits without a double in the loop.
  let a = 0x811c9dc5 | 0
  let b = 0x9747b28c | 0
  let w = 0
  for (let p = -1; p < parts; p++) {
    const s = p < 0 ? first : more![p]!
    // The newline before a further part ends a word.
    if (inWord) {
      if (words < MAX_WORDS) blocks[words] = wordBlock(w)
      words++
      inWord = false
    }
    const n = s.length
    for (let i = 0; i < n; i++) {
      let c = s.charCodeAt(i)
      if (c < 0x80) {
        if ((c - 65) >>> 0 < 26) c += 32
      } else if (raw) return -1
      if (isSpace(c)) {
        if (inWord) {
          if (words < MAX_WORDS) blocks[words] = wordBlock(w)
          words++
          inWord = false
        }
        continue
      }
      if (!inWord) {
        if (words > 0) {
          a = Math.imul(a ^ 32, 0x01000193)
          b = Math.imul(b ^ 32, 0x01000193)
        }
        w = 0x811c9dc5 | 0
        inWord = true
      }
      a = Math.imul(a ^ c, 0x01000193)
      b = Math.imul(b ^ c, 0x01000193)
      w = Math.imul(w ^ c, 0x01000193)
    }
  }
  if (inWord) {
    if (words < MAX_WORDS) blocks[words] = wordBlock(w)
    words++
  }
  HASHES[0] = a
  HASHES[1] = b
  return words
}

/** Adds one to the counts of the bits set in `x` (the counts from word `at` of COUNTS on). */
function countBits(counts: Int32Array, at: number, x: number): void {
  for (let k = at; x !== 0; k++) {
    const carry = counts[k]! & x
    counts[k] = counts[k]! ^ x
    x = carry
  }
}

/**
 * The bits whose count (from word `at` of COUNTS on) is above `half`: a bit-sliced comparison,
 * from the highest bit of the counts down. A SimHash bit is set when more than half the shingles
 * have it.
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
  return greater >>> 0
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
  let words = scan(text, more, true)
  if (words < 0)
    words = scan((more === undefined ? text : [text, ...more].join('\n')).toLowerCase(), undefined, false)
  const hash = hex16(HASHES[0]! >>> 0, HASHES[1]! >>> 0)
  if (words <= 3) {
    // One shingle of all the words (none: no shingle, no bit set): each bit is its hash's.
    if (words === 0) return { hash, hi: 0, lo: 0 }
    return {
      hash,
      hi: shingleHash(BLOCKS, 0, words, HI_SEED) >>> 0,
      lo: shingleHash(BLOCKS, 0, words, LO_SEED) >>> 0,
    }
  }
  const counts = COUNTS.fill(0)
  const shingles = Math.min(words - 2, MAX_SHINGLES)
  for (let w = 0; w < shingles; w++) {
    countBits(counts, 0, shingleHash(BLOCKS, w, 3, LO_SEED))
    countBits(counts, PLANES, shingleHash(BLOCKS, w, 3, HI_SEED))
  }
  const half = shingles >>> 1
  return { hash, hi: above(counts, PLANES, half), lo: above(counts, 0, half) }
}
