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

/** Word shingles of `size` words (the whole text when shorter); at most `max` of them. */
function shingles(normalised: string, size: number, max: number): string[] {
  const words = normalised.split(' ')
  if (words.length <= size) return [normalised]
  const out: string[] = []
  for (let i = 0; i + size <= words.length && out.length < max; i++) {
    out.push(`${words[i]} ${words[i + 1]} ${words[i + 2]}`)
  }
  return out
}

/** At most this many shingles are hashed: a long prompt costs no more than this. */
export const MAX_SHINGLES = 512

/** SimHash of normalised text over 3-word shingles: near texts differ in few bits. */
export function simHash(normalised: string): { hi: number; lo: number } {
  const votes = new Int32Array(64)
  for (const s of shingles(normalised, 3, MAX_SHINGLES)) {
    const a = fnv1a(s)
    const b = fnv1a(s, 0x5bd1e995)
    for (let bit = 0; bit < 32; bit++) {
      votes[bit]! += ((a >>> bit) & 1) * 2 - 1
      votes[bit + 32]! += ((b >>> bit) & 1) * 2 - 1
    }
  }
  let hi = 0
  let lo = 0
  for (let bit = 0; bit < 32; bit++) {
    if (votes[bit]! > 0) lo |= 1 << bit
    if (votes[bit + 32]! > 0) hi |= 1 << bit
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

/** Words whose bounds fingerprint() keeps: those of the first MAX_SHINGLES shingles. */
const MAX_WORDS = MAX_SHINGLES + 2
/** Scratch for fingerprint(): each word's start and end in the lower-cased text. */
const BOUNDS = new Int32Array(2 * MAX_WORDS)
/** Bits of a count of shingles (at most MAX_SHINGLES = 512: 10 bits). */
const PLANES = 10
/**
 * Scratch for fingerprint(): per SimHash bit, how many shingle hashes had it set, kept
 * bit-sliced — word k holds bit k of the 32 counts of the low half (k < PLANES) and of the high
 * half (PLANES + k) — so that adding a hash is a carry ripple over a few words, not 64 counters.
 */
const COUNTS = new Int32Array(2 * PLANES)

/**
 * Scratch for fingerprint(): the lower-cased text's code units, read once from the string: each
 * word is hashed six times (three shingles, two seeds), and a typed array's element costs fewer
 * instructions than a `charCodeAt`. A text whose shingles end beyond it is hashed from its string.
 */
const CODES = new Uint16Array(1 << 14)
/** Scratch for scan(): the prompt hash's two halves, signed. */
const HASHES = new Int32Array(2)

/** FNV-1a of `count` words from the `first`-th, joined by one space (what the shingle's text would hash to). */
function wordsHash(s: string, bounds: Int32Array, first: number, count: number, seed: number): number {
  let h = seed | 0
  for (let w = first; w < first + count; w++) {
    if (w > first) h = Math.imul(h ^ 32, 0x01000193)
    for (let i = bounds[2 * w]!, end = bounds[2 * w + 1]!; i < end; i++) {
      h = Math.imul(h ^ s.charCodeAt(i), 0x01000193)
    }
  }
  return h >>> 0
}

/** wordsHash() from the code units scan() kept in CODES. */
function codesHash(
  codes: Uint16Array,
  bounds: Int32Array,
  first: number,
  count: number,
  seed: number,
): number {
  let h = seed | 0
  for (let w = first; w < first + count; w++) {
    if (w > first) h = Math.imul(h ^ 32, 0x01000193)
    for (let i = bounds[2 * w]!, end = bounds[2 * w + 1]!; i < end; i++) {
      h = Math.imul(h ^ codes[i]!, 0x01000193)
    }
  }
  return h >>> 0
}

/**
 * One pass over the lower-cased text `s` (flat: a string just made by toLowerCase — reading a
 * concatenation's characters costs several times more): the bounds of its words (the first
 * MAX_WORDS) into BOUNDS, its code units into CODES (as many as fit), the prompt hash's halves
 * into HASHES; answers the number of words.
 */
function scan(s: string): number {
  const n = s.length
  const codes = CODES
  const room = codes.length
  const bounds = BOUNDS
  let words = 0
  let inWord = false
  // Signed, as in fnv1a: the same bits without a double in the loop.
  let a = 0x811c9dc5 | 0
  let b = 0x9747b28c | 0
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i)
    if (isSpace(c)) {
      if (inWord) {
        if (words < MAX_WORDS) bounds[2 * words + 1] = i
        words++
        inWord = false
      }
      continue
    }
    if (i < room) codes[i] = c
    if (!inWord) {
      if (words > 0) {
        a = Math.imul(a ^ 32, 0x01000193)
        b = Math.imul(b ^ 32, 0x01000193)
      }
      if (words < MAX_WORDS) bounds[2 * words] = i
      inWord = true
    }
    a = Math.imul(a ^ c, 0x01000193)
    b = Math.imul(b ^ c, 0x01000193)
  }
  if (inWord) {
    if (words < MAX_WORDS) bounds[2 * words + 1] = n
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
 * voted for it (votes for minus against > 0).
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
 * pass. The words of the lower-cased text (the normalised text is they joined by one space) are
 * found and the prompt hash computed as they are; the shingles are hashed from the words' bounds.
 * No string is made but the lower-cased text and the hash's digits (the three steps apart cost ~8
 * µs a request in the gateway, mostly strings); test/core/sketch.test.ts holds the results equal.
 */
export function fingerprint(text: string): { hash: string; hi: number; lo: number } {
  const s = text.toLowerCase()
  const words = scan(s)
  const a = HASHES[0]! >>> 0
  const b = HASHES[1]! >>> 0
  const bounds = BOUNDS
  // The shingles' words lie in CODES, unless the last of them ends beyond it (a long text).
  const last = Math.min(words, MAX_WORDS) - 1
  const inCodes = last < 0 || bounds[2 * last + 1]! <= CODES.length
  const hash = (first: number, count: number, seed: number) =>
    inCodes ? codesHash(CODES, bounds, first, count, seed) : wordsHash(s, bounds, first, count, seed)
  if (words <= 3) {
    // One shingle, the whole normalised text (its first hash is the prompt hash's first half):
    // each bit has one vote, for or against.
    return { hash: hex16(a, b), hi: hash(0, words, 0x5bd1e995), lo: a }
  }
  const counts = COUNTS.fill(0)
  const shingles = Math.min(words - 2, MAX_SHINGLES)
  for (let w = 0; w < shingles; w++) {
    countBits(counts, 0, hash(w, 3, 0x811c9dc5))
    countBits(counts, PLANES, hash(w, 3, 0x5bd1e995))
  }
  const half = shingles >>> 1
  return { hash: hex16(a, b), hi: above(counts, PLANES, half), lo: above(counts, 0, half) }
}
