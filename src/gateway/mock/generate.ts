/** Deterministic text for the mock upstream: the same request always gets the same answer. */

// Each word, alone or with its leading space, is one token in o200k_base and cl100k_base, so a
// completion of N words is N tokens and can be streamed one token per chunk like a real model does.
const WORDS = (
  'the water river flows over stone and light falls on every gate while a keeper counts each drop ' +
  'that passes through so nothing floods valley below when rain comes down from high hills channel ' +
  'holds steady quiet fields wait for their share of time measured fair open close again morning ' +
  'evening season year small large many few first last'
).split(' ')
// Words that are one token even without a leading space, to open a completion with.
const FIRST_WORDS = [
  'the',
  'water',
  'river',
  'light',
  'rain',
  'time',
  'open',
  'close',
  'first',
  'many',
  'each',
  'every',
  'when',
  'while',
]

/** FNV-1a over a string: a fast, stable 32-bit seed. */
export function hash32(text: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return h >>> 0
}

/** mulberry32: a tiny seeded PRNG with good spread. */
export function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/**
 * The pieces (one token each) of a completion for `seedText`: its length is drawn from [min, max]
 * and cut to `maxTokens` when that is smaller.
 */
export function completionPieces(
  seedText: string,
  range: { min: number; max: number },
  maxTokens: number | undefined,
): string[] {
  const next = prng(hash32(seedText))
  const natural = range.min + Math.floor(next() * (range.max - range.min + 1))
  const length = Math.max(0, Math.min(natural, maxTokens ?? natural))
  const pieces: string[] = []
  for (let i = 0; i < length; i++) {
    if (i === 0) pieces.push(FIRST_WORDS[Math.floor(next() * FIRST_WORDS.length)]!)
    else pieces.push(` ${WORDS[Math.floor(next() * WORDS.length)]}`)
  }
  return pieces
}

/** A unit-length embedding vector derived from the text. */
export function embeddingVector(text: string, dimensions: number): number[] {
  const next = prng(hash32(text))
  const v = Array.from({ length: dimensions }, () => next() * 2 - 1)
  const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0)) || 1
  return v.map((x) => Math.fround(x / norm))
}
