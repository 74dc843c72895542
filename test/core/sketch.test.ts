/**
 * fingerprint() computes in one pass what the steps of its definition give: the prompt hash and
 * the SimHash of the normalised text. Held equal here to those steps written plainly (lower case,
 * `\s+` collapsed, trimmed; FNV-1a; 3-word shingles, each hashed by MurmurHash3 over its words'
 * FNV-1a hashes as little-endian bytes).
 */
import { describe, expect, it } from 'vitest'
import {
  fingerprint,
  fnv1a,
  MAX_SHINGLES,
  normalisePrompt,
  promptHash,
  simHash,
} from '../../src/core/detectors/sketch.js'

const hex = (x: number) => x.toString(16).padStart(8, '0')

/** MurmurHash3 x86 32-bit of `bytes`, byte by byte as its reference code reads them. */
function murmur3(bytes: Uint8Array, seed: number): number {
  const rotl = (x: number, r: number) => ((x << r) | (x >>> (32 - r))) >>> 0
  const blocks = bytes.length >> 2
  let h = seed >>> 0
  for (let i = 0; i < blocks; i++) {
    let k =
      (bytes[4 * i]! | (bytes[4 * i + 1]! << 8) | (bytes[4 * i + 2]! << 16) | (bytes[4 * i + 3]! << 24)) >>> 0
    k = Math.imul(rotl(Math.imul(k, 0xcc9e2d51), 15), 0x1b873593) >>> 0
    h = (Math.imul(rotl((h ^ k) >>> 0, 13), 5) + 0xe6546b64) >>> 0
  }
  // The tail (1-3 bytes), as the reference's fall-through switch reads it.
  const tail = 4 * blocks
  const rest = bytes.length & 3
  if (rest > 0) {
    let k = 0
    for (let j = rest - 1; j >= 0; j--) k ^= bytes[tail + j]! << (8 * j)
    h ^= Math.imul(rotl(Math.imul(k, 0xcc9e2d51) >>> 0, 15), 0x1b873593)
  }
  h = (h ^ bytes.length) >>> 0
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0
  return (h ^ (h >>> 16)) >>> 0
}

/** A shingle's hash: MurmurHash3 of its words' FNV-1a hashes, each as 4 little-endian bytes. */
function shingleHash(words: string[], seed: number): number {
  const bytes = new Uint8Array(4 * words.length)
  const view = new DataView(bytes.buffer)
  for (const [i, w] of words.entries()) view.setUint32(4 * i, fnv1a(w), true)
  return murmur3(bytes, seed)
}

/** The fingerprint as defined: each step on its own, strings and all. */
function reference(text: string): { hash: string; hi: number; lo: number } {
  const n = text.toLowerCase().replace(/\s+/g, ' ').trim()
  const words = n === '' ? [] : n.split(' ')
  const shingles =
    words.length <= 3
      ? words.length === 0
        ? []
        : [words]
      : words
          .slice(0, -2)
          .map((w, i) => [w, words[i + 1]!, words[i + 2]!])
          .slice(0, MAX_SHINGLES)
  const votes = new Array<number>(64).fill(0)
  for (const s of shingles) {
    const a = shingleHash(s, 0x811c9dc5)
    const b = shingleHash(s, 0x5bd1e995)
    for (let bit = 0; bit < 32; bit++) {
      votes[bit]! += (a >>> bit) & 1 ? 1 : -1
      votes[bit + 32]! += (b >>> bit) & 1 ? 1 : -1
    }
  }
  let lo = 0
  let hi = 0
  for (let bit = 0; bit < 32; bit++) {
    if (votes[bit]! > 0) lo = (lo | (1 << bit)) >>> 0
    if (votes[bit + 32]! > 0) hi = (hi | (1 << bit)) >>> 0
  }
  return { hash: hex(fnv1a(n)) + hex(fnv1a(n, 0x9747b28c)), hi, lo }
}

/** A deterministic generator (xorshift32): the same strings on every run. */
function random(seed: number) {
  let x = seed
  return (below: number) => {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    return (x >>> 0) % below
  }
}

// Letters (some whose lower case is longer, or depends on context), digits, punctuation, every
// kind of whitespace `\s` matches, a surrogate pair, and look-alikes that are not whitespace.
const PIECES = [
  ...'abcXYZ019.,:?!-'.split(''),
  'Hello',
  'WORLD',
  'İ',
  'Σ',
  'ΣΑΣ',
  'ß',
  'É',
  '😀',
  ' ',
  '  ',
  '\t',
  '\n',
  '\r\n',
  '\v',
  '\f',
  '\u00a0',
  '\u1680',
  '\u2000',
  '\u200a',
  '\u2028',
  '\u2029',
  '\u202f',
  '\u205f',
  '\u3000',
  '\ufeff',
  '\u180e',
  '\u200b',
  '\u0085',
]

describe('fingerprint', () => {
  it("the reference's MurmurHash3 gives the algorithm's published values", () => {
    const bytes = (...b: number[]) => Uint8Array.from(b)
    expect(murmur3(bytes(), 0)).toBe(0)
    expect(murmur3(bytes(), 1)).toBe(0x514e28b7)
    expect(murmur3(bytes(0xff, 0xff, 0xff, 0xff), 0)).toBe(0x76293b50)
    expect(murmur3(bytes(0x21, 0x43, 0x65, 0x87), 0)).toBe(0xf55b516b)
    expect(murmur3(bytes(0x21, 0x43, 0x65, 0x87), 0x5082edee)).toBe(0x2362f9de)
    expect(murmur3(bytes(0x21, 0x43, 0x65), 0)).toBe(0x7e4a8634)
    expect(murmur3(new TextEncoder().encode('Hello, world!'), 1234)).toBe(0xfaf6cdb3)
  })

  it('equals the prompt hash and SimHash of the normalised text', () => {
    const text = 'gpt-4o-mini\nQuestion 12: say hello in 12 words, please.'
    const n = normalisePrompt(text)
    expect(fingerprint(text)).toEqual({ hash: promptHash(n), ...simHash(n) })
    expect(fingerprint(text)).toEqual(reference(text))
  })

  it('matches the step-by-step definition on varied texts, empty, blank, short and long', () => {
    const next = random(0x2545f491)
    const texts = ['', ' ', '\n\t ', 'a', 'a b', ' a  b c ', 'a b c d', 'Ab\u00a0cd\u2028ef gh']
    for (let t = 0; t < 2000; t++) {
      const pieces = next(4) === 0 ? next(1200) : next(40)
      let s = ''
      for (let i = 0; i < pieces; i++) s += PIECES[next(PIECES.length)]
      texts.push(s)
    }
    // Past MAX_SHINGLES shingles: only the first 512 vote.
    texts.push(Array.from({ length: 700 }, (_, i) => `w${i % 37}`).join(' '))
    // Longer than fingerprint()'s copy of the code units (16,384): the shingles are hashed from
    // the string, within the copy or past it, and a long word crosses its end.
    const long = (word: number) => Array.from({ length: 600 }, (_, i) => `W${i % 41}`.repeat(word)).join(' ')
    texts.push(long(12), long(8), `${'x'.repeat(16_380)} Ab cd EF gh`, `${'Y '.repeat(8_000)}zz`)
    for (const text of texts) expect(fingerprint(text), JSON.stringify(text)).toEqual(reference(text))
  })

  it('in parts: equals the definition of the parts joined by newlines, ASCII or not', () => {
    const next = random(0x1b873593)
    const ascii = PIECES.filter((p) => [...p].every((c) => c.charCodeAt(0) < 0x80))
    for (let t = 0; t < 2000; t++) {
      const pieces = t % 2 === 0 ? ascii : PIECES
      const parts: string[] = []
      for (let k = 1 + next(4); k > 0; k--) {
        let s = ''
        for (let i = next(t % 50 === 0 ? 900 : 30); i > 0; i--) s += pieces[next(pieces.length)]
        parts.push(s)
      }
      const [first, ...more] = parts
      expect(fingerprint(first!, more), JSON.stringify(parts)).toEqual(reference(parts.join('\n')))
    }
    expect(fingerprint('gpt-4o-mini', [])).toEqual(reference('gpt-4o-mini\n'))
    expect(fingerprint('', ['', ''])).toEqual(reference('\n\n'))
    expect(fingerprint('Model', ['One TWO', 'thrEE', 'Four five'])).toEqual(
      reference('Model\nOne TWO\nthrEE\nFour five'),
    )
  })

  it('splits words on exactly the code units `\\s` matches', () => {
    for (let c = 0; c < 0x10000; c++) {
      const ch = String.fromCharCode(c)
      const cases: [{ hash: string; hi: number; lo: number }, string][] = [
        [fingerprint(`Ab${ch}cd ef gh`), `Ab${ch}cd ef gh`],
        // In parts, each after a newline: read part by part, ASCII lower-cased as it is read.
        [fingerprint('Ab', [`x${ch}Cd`, 'EF gh']), `Ab\nx${ch}Cd\nEF gh`],
      ]
      for (const [got, text] of cases) {
        const want = reference(text)
        if (got.hash !== want.hash || got.hi !== want.hi || got.lo !== want.lo) {
          expect(got, `code unit ${c.toString(16)}`).toEqual(want)
        }
      }
    }
  })
})
