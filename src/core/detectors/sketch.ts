/**
 * Cheap fingerprints of a prompt for loop detection: a hash of the normalised text (the same
 * request again) and a 64-bit SimHash over word shingles (nearly the same request), kept as two
 * unsigned 32-bit halves so that Redis Lua (32-bit `bit` operations) compares them the same way.
 */

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
  return a.toString(16).padStart(8, '0') + b.toString(16).padStart(8, '0')
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
  return popcount32((a.hi ^ b.hi) >>> 0) + popcount32((a.lo ^ b.lo) >>> 0)
}

/** Both fingerprints of a prompt. */
export function fingerprint(text: string): { hash: string; hi: number; lo: number } {
  const n = normalisePrompt(text)
  const { hi, lo } = simHash(n)
  return { hash: promptHash(n), hi, lo }
}
