import { getTokenizer } from '@anthropic-ai/tokenizer'
import { beforeAll, describe, expect, it } from 'vitest'
import {
  anthropicPromptParts,
  CLAUDE_NEW_TOKEN_SCALE,
  CLAUDE_TOKEN_SCALE,
  claudeTokenScale,
  SCRIPT_SCAN_UNITS,
  scriptTokens,
} from '../../src/gateway/dialects/anthropic-prompt.js'
import { countParts, type Encoder, encoderFor } from '../../src/gateway/tokens.js'
import { claudeCorpus } from '../fixtures/claude-corpus.js'

/**
 * The Claude estimate is calibrated on test/fixtures/claude-corpus/ against the tokenizer
 * Anthropic published (scripts/claude-token-scale.ts prints the figures): on every sample, for
 * either tokenizer generation, the estimate of a one-message request is at least the reference
 * count of its text.
 */
describe('the Claude token estimate against the reference tokenizer', () => {
  const samples = claudeCorpus()
  let o200k: Encoder
  /** The reference count of each sample's text, as the package's countTokens makes it (one tokenizer). */
  const reference = new Map<string, number>()
  const referenceTokens = (text: string) => reference.get(text)!
  beforeAll(async () => {
    o200k = await encoderFor('o200k_base')
    const tokenizer = getTokenizer()
    try {
      for (const s of samples) reference.set(s.text, tokenizer.encode(s.text.normalize('NFKC'), 'all').length)
    } finally {
      tokenizer.free()
    }
  })

  /** The estimate of the text alone: the request's estimate less that of an empty message. */
  const estimateOf = (model: string, text: string) => {
    const request = (content: string) => ({ model, max_tokens: 1, messages: [{ role: 'user', content }] })
    return (
      countParts(o200k, anthropicPromptParts(request(text))) -
      countParts(o200k, anthropicPromptParts(request('')))
    )
  }

  it('spans every kind of text the corpus is meant to hold', () => {
    const kinds = new Set(samples.map((s) => s.kind))
    for (const kind of ['prose', 'code', 'json', 'numbers', 'markdown', 'config', 'logs', 'chat', 'math'])
      expect(kinds).toContain(kind)
    const languages = new Set(samples.filter((s) => s.kind === 'prose').map((s) => s.name.split(/[-#]/)[1]))
    expect(languages.size).toBeGreaterThanOrEqual(15)
    expect(samples.length).toBeGreaterThan(150)
  })

  for (const [model, scale] of [
    ['claude-sonnet-4-6', CLAUDE_TOKEN_SCALE],
    ['claude-opus-4-7', CLAUDE_NEW_TOKEN_SCALE],
  ] as const) {
    it(`${model} (×${scale}): the text's estimate is at least its reference count on every sample`, () => {
      expect(claudeTokenScale(model)).toBe(scale)
      const short: string[] = []
      for (const sample of samples) {
        const reference = referenceTokens(sample.text)
        const estimate = estimateOf(model, sample.text)
        if (estimate < reference) short.push(`${sample.name}: ${estimate} < ${reference}`)
      }
      expect(short).toEqual([])
    })
  }

  it('the factor alone covers text in ASCII; the scripts beyond need their tokens per character', () => {
    const ascii = samples.filter((s) => Buffer.byteLength(s.text) === s.text.length)
    expect(ascii.length).toBeGreaterThan(50)
    for (const s of ascii) {
      expect(scriptTokens(s.text)).toBe(0)
      expect(Math.ceil(o200k.count(s.text) * CLAUDE_TOKEN_SCALE)).toBeGreaterThanOrEqual(
        referenceTokens(s.text),
      )
    }
    // Without the script tokens, the factor falls short on Thai, Hindi, Greek, Arabic…
    const short = samples.filter(
      (s) => Math.ceil(o200k.count(s.text) * CLAUDE_TOKEN_SCALE) < referenceTokens(s.text),
    )
    expect(short.length).toBeGreaterThan(10)
    expect(short.every((s) => s.kind === 'prose')).toBe(true)
  })

  it('knows which models use the older tokenizer, and takes the newer factor for any other', () => {
    for (const old of [
      'claude-3-haiku-20240307',
      'claude-3-5-sonnet-latest',
      'claude-3-7-sonnet-20250219',
      'claude-sonnet-4-20250514',
      'claude-opus-4-1-20250805',
      'claude-opus-4-5',
      'claude-sonnet-4-6',
      'claude-haiku-4-5-20251001',
      'claude-sonnet-4-5@20250929',
    ])
      expect(claudeTokenScale(old), old).toBe(CLAUDE_TOKEN_SCALE)
    for (const other of [
      'claude-opus-4-7',
      'claude-opus-4-10',
      'claude-sonnet-5',
      'my-finetune',
      undefined,
      42,
    ])
      expect(claudeTokenScale(other), String(other)).toBe(CLAUDE_NEW_TOKEN_SCALE)
  })

  it('bounds the scan of a huge text, charging the rest at the dearest block (never less)', () => {
    const thai = 'ประตูระบายน้ำ'
    const text = thai.repeat(Math.ceil((SCRIPT_SCAN_UNITS * 1.5) / thai.length))
    const exactPerUnit = scriptTokens(thai.repeat(1000)) / (thai.length * 1000)
    const bounded = scriptTokens(text)
    expect(bounded).toBeGreaterThanOrEqual(Math.floor(text.length * exactPerUnit))
    expect(scriptTokens(text, text.length)).toBeLessThanOrEqual(bounded)
  })
})
