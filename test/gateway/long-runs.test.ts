/**
 * countInRuns hands the tokenizer the same pieces as the plain definition — every run of either kind
 * cut after maxRun characters, never inside a surrogate pair — whether or not a text has a long run,
 * and whatever the run lengths around the stride its quick check looks at.
 */
import { describe, expect, it } from 'vitest'
import { isSpace } from '../../src/core/whitespace.js'
import { countInRuns, MAX_RUN } from '../../src/gateway/long-runs.js'

/** The plain definition: read every character, cut a run when it would pass maxRun. */
function piecesByDefinition(text: string, maxRun: number): string[] {
  const pieces: string[] = []
  const length = text.length
  if (length <= maxRun) return [text]
  let segmentStart = 0
  let runStart = 0
  let runSpace = isSpace(text.charCodeAt(0))
  for (let i = 1; i < length; i++) {
    const space = isSpace(text.charCodeAt(i))
    if (space !== runSpace) {
      runSpace = space
      runStart = i
    } else if (i - runStart >= maxRun) {
      const low = text.charCodeAt(i)
      const cut = low >= 0xdc00 && low <= 0xdfff ? i + 1 : i
      if (cut >= length) break
      pieces.push(text.slice(segmentStart, cut))
      segmentStart = cut
      runStart = cut
      i = cut
    }
  }
  pieces.push(segmentStart === 0 ? text : text.slice(segmentStart))
  return pieces
}

function piecesOf(text: string, maxRun: number): string[] {
  const pieces: string[] = []
  countInRuns(
    (piece) => {
      pieces.push(piece)
      return 0
    },
    text,
    maxRun,
  )
  return pieces
}

/** Runs of random kinds and lengths near maxRun (a fixed PRNG: a failure must reproduce). */
function textOfRuns(seed: number, maxRun: number, runs: number): string {
  let x = seed
  const next = (n: number) => {
    x = (x * 1103515245 + 12345) >>> 0
    return x % n
  }
  const kinds = ['a', 'é', '😀', ' ', '\n', '\u3000']
  let out = ''
  for (let r = 0; r < runs; r++) {
    const kind = kinds[next(kinds.length)]!
    // Mostly just under, at and just over maxRun; sometimes short.
    const length = next(4) === 0 ? 1 + next(4) : Math.max(1, maxRun - 3 + next(7))
    const unit = kind === '😀' ? Math.max(1, length >> 1) : length
    out += kind.repeat(unit)
  }
  return out
}

describe('countInRuns', () => {
  it('gives the pieces of the plain definition for texts with and without long runs', () => {
    let cut = 0
    let whole = 0
    for (const maxRun of [1, 2, 3, 5, 8, 17, MAX_RUN]) {
      for (let seed = 1; seed <= 300; seed++) {
        const text = textOfRuns(seed * 7919 + maxRun, maxRun, 1 + (seed % 12))
        const expected = piecesByDefinition(text, maxRun)
        expect(piecesOf(text, maxRun), `maxRun ${maxRun}, seed ${seed}`).toEqual(expected)
        if (expected.length > 1) cut++
        else whole++
      }
    }
    // Both kinds of text were tried, so neither path went unchecked.
    expect(cut).toBeGreaterThan(100)
    expect(whole).toBeGreaterThan(100)
  })

  it('counts a prompt of ordinary words whole, and cuts a run one character too long', () => {
    const words = 'The limiter charges each request for its prompt and completion tokens. '.repeat(300)
    expect(piecesOf(words, MAX_RUN)).toEqual([words])
    for (const at of [0, 1, 63, 64, 65, 500, words.length - MAX_RUN - 1]) {
      const exact = `${words.slice(0, at)} ${'x'.repeat(MAX_RUN)} ${words.slice(at)}`
      expect(piecesOf(exact, MAX_RUN), `a run of MAX_RUN at ${at}`).toEqual([exact])
      const over = `${words.slice(0, at)} ${'x'.repeat(MAX_RUN + 1)} ${words.slice(at)}`
      expect(piecesOf(over, MAX_RUN), `a run of MAX_RUN + 1 at ${at}`).toEqual(
        piecesByDefinition(over, MAX_RUN),
      )
      expect(piecesOf(over, MAX_RUN).length, `a run of MAX_RUN + 1 at ${at}`).toBe(2)
    }
  })
})
