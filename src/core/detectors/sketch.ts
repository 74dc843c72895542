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

/** FNV-1a over UTF-16 code units, 32-bit, unsigned. */
export function fnv1a(text: string, seed = 0x811c9dc5): number {
  let h = seed >>> 0
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i)
    h = Math.imul(h, 0x01000193) >>> 0
  }
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

function popcount32(x: number): number {
  let v = x >>> 0
  v -= (v >>> 1) & 0x55555555
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333)
  return Math.imul((v + (v >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24
}

/** Bits in which two SimHashes differ (0..64). */
export function hamming(a: { hi: number; lo: number }, b: { hi: number; lo: number }): number {
  return bitsApart(a.hi, a.lo, b.hi, b.lo)
}

/** hamming() of two SimHashes given by their halves. */
export function bitsApart(aHi: number, aLo: number, bHi: number, bLo: number): number {
  return popcount32((aHi ^ bHi) >>> 0) + popcount32((aLo ^ bLo) >>> 0)
}

/** Words whose bounds fingerprint() keeps: those of the first MAX_SHINGLES shingles. */
const MAX_WORDS = MAX_SHINGLES + 2
/** Scratch for fingerprint(): each word's start and end in the lower-cased text; the SimHash votes. */
const BOUNDS = new Int32Array(2 * MAX_WORDS)
const VOTES = new Int32Array(64)

/** FNV-1a of `count` words from the `first`-th, joined by one space (what the shingle's text would hash to). */
function wordsHash(s: string, bounds: Int32Array, first: number, count: number, seed: number): number {
  let h = seed
  for (let w = first; w < first + count; w++) {
    if (w > first) h = Math.imul(h ^ 32, 0x01000193)
    for (let i = bounds[2 * w]!, end = bounds[2 * w + 1]!; i < end; i++) {
      h = Math.imul(h ^ s.charCodeAt(i), 0x01000193)
    }
  }
  return h >>> 0
}

function vote(votes: Int32Array, a: number, b: number): void {
  for (let bit = 0; bit < 32; bit++) {
    votes[bit]! += ((a >>> bit) & 1) * 2 - 1
    votes[bit + 32]! += ((b >>> bit) & 1) * 2 - 1
  }
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
  const n = s.length
  const bounds = BOUNDS
  let words = 0
  let a = 0x811c9dc5
  let b = 0x9747b28c
  let i = 0
  for (;;) {
    while (i < n && isSpace(s.charCodeAt(i))) i++
    if (i >= n) break
    const start = i
    if (words > 0) {
      a = Math.imul(a ^ 32, 0x01000193)
      b = Math.imul(b ^ 32, 0x01000193)
    }
    for (; i < n; i++) {
      const c = s.charCodeAt(i)
      if (isSpace(c)) break
      a = Math.imul(a ^ c, 0x01000193)
      b = Math.imul(b ^ c, 0x01000193)
    }
    if (words < MAX_WORDS) {
      bounds[2 * words] = start
      bounds[2 * words + 1] = i
    }
    words++
  }
  a >>>= 0
  b >>>= 0
  const votes = VOTES.fill(0)
  if (words <= 3) {
    // One shingle, the whole normalised text: its first hash is the prompt hash's first half.
    vote(votes, a, wordsHash(s, bounds, 0, words, 0x5bd1e995))
  } else {
    const count = Math.min(words - 2, MAX_SHINGLES)
    for (let w = 0; w < count; w++) {
      vote(votes, wordsHash(s, bounds, w, 3, 0x811c9dc5), wordsHash(s, bounds, w, 3, 0x5bd1e995))
    }
  }
  let hi = 0
  let lo = 0
  for (let bit = 0; bit < 32; bit++) {
    if (votes[bit]! > 0) lo |= 1 << bit
    if (votes[bit + 32]! > 0) hi |= 1 << bit
  }
  return { hash: hex16(a, b), hi: hi >>> 0, lo: lo >>> 0 }
}
