/**
 * fingerprint() computes in one pass what the three steps of its definition give: the prompt hash
 * and the SimHash of the normalised text. Held equal here to those steps written plainly (lower
 * case, `\s+` collapsed, trimmed; FNV-1a; SimHash over 3-word shingles).
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

/** The fingerprint as defined: each step on its own, strings and all. */
function reference(text: string): { hash: string; hi: number; lo: number } {
  const n = text.toLowerCase().replace(/\s+/g, ' ').trim()
  const words = n.split(' ')
  const shingles =
    words.length <= 3
      ? [n]
      : words
          .slice(0, -2)
          .map((w, i) => `${w} ${words[i + 1]} ${words[i + 2]}`)
          .slice(0, MAX_SHINGLES)
  const votes = new Array<number>(64).fill(0)
  for (const s of shingles) {
    const a = fnv1a(s)
    const b = fnv1a(s, 0x5bd1e995)
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

  it('splits words on exactly the code units `\\s` matches', () => {
    for (let c = 0; c < 0x10000; c++) {
      const text = `Ab${String.fromCharCode(c)}cd ef gh`
      const got = fingerprint(text)
      const want = reference(text)
      if (got.hash !== want.hash || got.hi !== want.hi || got.lo !== want.lo) {
        expect(got, `code unit ${c.toString(16)}`).toEqual(want)
      }
    }
  })
})
