/**
 * Token counting in bounded time: the tokenizer never sees a long piece, bounds hold for any text,
 * large texts are counted off the event loop, and what cannot be counted in time gets its upper bound.
 */
import { afterAll, describe, expect, it, vi } from 'vitest'
import { CountPool } from '../../src/gateway/count-pool.js'
import { LONGEST_TOKEN_BYTES, lowerBound, TokenCounter, upperBound } from '../../src/gateway/counting.js'
import { MAX_RUN } from '../../src/gateway/long-runs.js'
import { encoderFor, type PromptParts } from '../../src/gateway/tokens.js'

/** The longest run of whitespace, or of anything else, in each text the tokenizer was given. */
const pieces: number[] = []

function longestRun(text: string): number {
  let longest = 0
  let run = 0
  let space: boolean | undefined
  for (const char of text) {
    const s = /\s/.test(char)
    run = s === space ? run + char.length : char.length
    space = s
    longest = Math.max(longest, run)
  }
  return longest
}

vi.mock('gpt-tokenizer/encoding/o200k_base', async (importOriginal) => {
  const original = await importOriginal<typeof import('gpt-tokenizer/encoding/o200k_base')>()
  return {
    ...original,
    countTokens: (text: string, options: Parameters<typeof original.countTokens>[1]) => {
      pieces.push(longestRun(text))
      return original.countTokens(text, options)
    },
  }
})

/** Deterministic text from an alphabet (no Math.random: a failure must reproduce). */
function textOf(length: number, alphabet: string, seed = 1): string {
  const chars = [...alphabet]
  let x = seed
  let out = ''
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) >>> 0
    out += chars[x % chars.length]
  }
  return out
}

const SAMPLES: Record<string, string> = {
  'one letter': 'a'.repeat(20_000),
  'one varied word': textOf(20_000, 'abcdefghijklmnopqrstuvwxyz'),
  punctuation: textOf(20_000, '!@#$%^&*()[]{};:,.<>?/|'),
  spaces: `${' '.repeat(20_000)}x`,
  newlines: `${'\n'.repeat(5_000)}x`,
  digits: textOf(20_000, '0123456789'),
  'CJK without spaces': textOf(5_000, '的一是不了人我在有他这为之大来以个中上们'),
  'emoji (surrogate pairs)': '😀'.repeat(5_000),
  'words and spaces': textOf(20_000, 'abcdef   \n'),
}

describe('bounded token counting', () => {
  const pool = new CountPool({ workers: 1 })
  afterAll(() => pool.close())

  it('never hands the tokenizer a run longer than MAX_RUN characters, whatever the text', async () => {
    const enc = await encoderFor('o200k_base')
    for (const [name, text] of Object.entries(SAMPLES)) {
      pieces.length = 0
      const tokens = enc.count(text)
      expect(pieces.length, name).toBeGreaterThan(0)
      // +1: a run may end on a surrogate pair kept whole.
      expect(Math.max(...pieces), name).toBeLessThanOrEqual(MAX_RUN + 1)
      expect(tokens, name).toBeGreaterThan(0)
    }
  })

  it('counts text without long runs exactly as the tokenizer does', async () => {
    const enc = await encoderFor('o200k_base')
    const { countTokens } = await import('gpt-tokenizer/encoding/o200k_base')
    const text = 'The limiter charges each request for its prompt and completion tokens. '.repeat(200)
    expect(enc.count(text)).toBe(countTokens(text))
  })

  it('keeps every count between the lower and the upper bound', async () => {
    const enc = await encoderFor('o200k_base')
    for (const [name, text] of Object.entries(SAMPLES)) {
      const parts: PromptParts = { fixed: 7, texts: [text, 'short'] }
      const counted = 7 + enc.count(text) + enc.count('short')
      expect(lowerBound(parts), name).toBeLessThanOrEqual(counted)
      expect(upperBound(parts), name).toBeGreaterThanOrEqual(counted)
    }
  })

  it('derives LONGEST_TOKEN_BYTES from every vocabulary the gateway loads', async () => {
    const vocabularies = ['o200k_base', 'cl100k_base', 'p50k_base', 'r50k_base'] as const
    for (const name of vocabularies) {
      const { default: ranks } = (await import(`gpt-tokenizer/bpeRanks/${name}`)) as {
        default: Array<string | number[]>
      }
      let longest = 0
      for (const token of ranks) {
        if (token === undefined) continue
        longest = Math.max(longest, typeof token === 'string' ? Buffer.byteLength(token) : token.length)
      }
      expect(longest, name).toBe(LONGEST_TOKEN_BYTES)
    }
  })

  it('counts a large text in a worker thread while the event loop keeps turning', async () => {
    const counter = new TokenCounter({ pool, inlineChars: 1_000, deadlineMs: 60_000 })
    const text = textOf(200_000, 'abcdefgh ijklmnop')
    const order: string[] = []
    setImmediate(() => order.push('event loop turned'))
    const counted = await counter.count('o200k_base', { fixed: 0, texts: [text] })
    order.push('counted')
    expect(order).toEqual(['event loop turned', 'counted'])
    expect(counted).toEqual({ tokens: (await encoderFor('o200k_base')).count(text), exact: true })
  })

  it('falls back to the upper bound when the text is too large, the deadline passes or the workers are full', async () => {
    const parts: PromptParts = { fixed: 3, texts: [textOf(50_000, 'abc ')] }
    const tooLarge = new TokenCounter({ pool, inlineChars: 100, exactChars: 10_000 })
    expect(await tooLarge.count('o200k_base', parts)).toEqual({ tokens: upperBound(parts), exact: false })

    const noTime = new TokenCounter({ pool, inlineChars: 100, deadlineMs: 1 })
    expect(await noTime.count('o200k_base', parts)).toEqual({ tokens: upperBound(parts), exact: false })

    const full = new TokenCounter({
      pool: new CountPool({ workers: 1, maxQueuedChars: 10_000 }),
      inlineChars: 100,
    })
    expect(await full.count('o200k_base', parts)).toEqual({ tokens: upperBound(parts), exact: false })
  })
})
