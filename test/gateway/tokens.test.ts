import { describe, expect, it } from 'vitest'
import { estimateRequest as estimateWith, openai } from '../../src/gateway/dialects/index.js'
import { chatPromptTokens, inputTokens } from '../../src/gateway/dialects/openai-prompt.js'
import type { ValidRequest } from '../../src/gateway/dialects/types.js'
import { completionPieces } from '../../src/gateway/mock/generate.js'
import { PriceTable, round } from '../../src/gateway/prices.js'
import {
  COUNT_CACHE_CHARS,
  COUNT_CACHE_ENTRIES,
  type Encoder,
  encoderFor,
  encodingForModel,
} from '../../src/gateway/tokens.js'

const validateRequest = (kind: string, body: unknown) => openai.validate(kind, body)
const estimateRequest = (req: ValidRequest, enc: Encoder, defaultOutputTokens: number) =>
  estimateWith(openai, req, enc, defaultOutputTokens)

describe('token estimation', () => {
  it('picks the encoding by model name, with o200k_base for unknown models', () => {
    expect(encodingForModel('gpt-4o-mini')).toBe('o200k_base')
    expect(encodingForModel('gpt-4o-2024-08-06')).toBe('o200k_base')
    expect(encodingForModel('o3-mini')).toBe('o200k_base')
    expect(encodingForModel('gpt-4')).toBe('cl100k_base')
    expect(encodingForModel('gpt-3.5-turbo-0125')).toBe('cl100k_base')
    expect(encodingForModel('text-embedding-3-small')).toBe('cl100k_base')
    expect(encodingForModel('gpt-oss-20b')).toBe('o200k_harmony')
    expect(encodingForModel('openai/gpt-4')).toBe('cl100k_base')
    expect(encodingForModel('llama3.1:8b')).toBe('o200k_base')
  })

  it('counts special-token strings in user text as text instead of throwing', async () => {
    const enc = await encoderFor('o200k_base')
    expect(enc.count('hello <|endoftext|> world')).toBeGreaterThan(3)
    expect(enc.count('')).toBe(0)
  })

  it('counts chat prompts with the per-message framing', async () => {
    const enc = await encoderFor('o200k_base')
    const one = chatPromptTokens(enc, { messages: [{ role: 'user', content: 'Hello there' }] })
    // 3 framing + "user" + "Hello there" + 3 reply priming
    expect(one).toBe(3 + enc.count('user') + enc.count('Hello there') + 3)
    const two = chatPromptTokens(enc, {
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: [{ type: 'text', text: 'Hello there' }], name: 'ann' },
      ],
    })
    expect(two).toBe(one + 3 + enc.count('system') + enc.count('Be brief.') + 1 + enc.count('ann'))
  })

  it('counts completion and embedding inputs in all their shapes', async () => {
    const enc = await encoderFor('cl100k_base')
    expect(inputTokens(enc, 'one two')).toBe(enc.count('one two'))
    expect(inputTokens(enc, ['one', 'two three'])).toBe(enc.count('one') + enc.count('two three'))
    expect(inputTokens(enc, [1, 2, 3])).toBe(3)
    expect(inputTokens(enc, [[1, 2], [3]])).toBe(3)
  })

  it('estimates prompt plus max output, times choices', async () => {
    const enc = await encoderFor('o200k_base')
    const messages = [{ role: 'user', content: 'Write a haiku about rivers.' }]
    const prompt = chatPromptTokens(enc, { messages })
    const chat = validateRequest('chat', { model: 'gpt-4o-mini', messages, max_tokens: 50, n: 2 })
    expect(estimateRequest(chat, enc, 256)).toEqual({ promptTokens: prompt, outputTokens: 100 })
    const unbounded = validateRequest('chat', { model: 'gpt-4o-mini', messages })
    expect(estimateRequest(unbounded, enc, 256).outputTokens).toBe(256)
    const newer = validateRequest('chat', {
      model: 'o3',
      messages,
      max_completion_tokens: 70,
      max_tokens: 10,
    })
    expect(estimateRequest(newer, enc, 256).outputTokens).toBe(70)
    const emb = validateRequest('embeddings', { model: 'text-embedding-3-small', input: ['a b', 'c'] })
    expect(estimateRequest(emb, enc, 256)).toEqual({
      promptTokens: enc.count('a b') + enc.count('c'),
      outputTokens: 0,
    })
    const legacy = validateRequest('completions', {
      model: 'gpt-3.5-turbo-instruct',
      prompt: ['x', 'y'],
      n: 3,
    })
    expect(estimateRequest(legacy, enc, 256).outputTokens).toBe(16 * 3 * 2)
  })

  it("the mock's words are one token each, so a streamed answer of N chunks is N tokens", async () => {
    for (const encoding of ['o200k_base', 'cl100k_base'] as const) {
      const enc = await encoderFor(encoding)
      for (const seed of ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h']) {
        const pieces = completionPieces(seed, { min: 400, max: 400 }, undefined)
        expect(pieces).toHaveLength(400)
        for (const piece of new Set(pieces)) expect(enc.count(piece)).toBe(1)
        expect(enc.count(pieces.join(''))).toBe(400)
      }
      // Every opening word (no leading space) is one token too.
      const openers = new Set(
        Array.from({ length: 500 }, (_, i) => completionPieces(`s${i}`, { min: 1, max: 1 }, undefined)[0]!),
      )
      for (const word of openers) expect(enc.count(word)).toBe(1)
    }
  })

  it('prices usage per 1M tokens: exact name, else the most specific glob; unknown models free', () => {
    const prices = new PriceTable({
      'my-llama*': { input: 1, output: 3 },
      'gpt-4o-mini': { input: 0.5, output: 0.5 },
    })
    expect(prices.cost('gpt-4o', { promptTokens: 1_000_000, completionTokens: 0 })).toBeCloseTo(2.5)
    expect(prices.cost('gpt-4o-2024-11-20', { promptTokens: 0, completionTokens: 1_000_000 })).toBeCloseTo(10)
    expect(
      prices.cost('gpt-4o-mini-2024-07-18', { promptTokens: 1_000_000, completionTokens: 1_000_000 }),
    ).toBeCloseTo(0.75)
    expect(prices.cost('gpt-4o-mini', { promptTokens: 2_000_000, completionTokens: 0 })).toBeCloseTo(1)
    expect(prices.cost('my-llama-70b', { promptTokens: 500_000, completionTokens: 500_000 })).toBeCloseTo(2)
    expect(prices.priceOf('totally-unknown')).toBeUndefined()
    expect(prices.cost('totally-unknown', { promptTokens: 1e6, completionTokens: 1e6 })).toBe(0)
    const catchAll = new PriceTable({ '*': { input: 1, output: 3 } })
    expect(catchAll.cost('local-model', { promptTokens: 1e6, completionTokens: 1e6 })).toBeCloseTo(4)
    expect(catchAll.cost('gpt-4o', { promptTokens: 1e6, completionTokens: 0 })).toBeCloseTo(2.5)
    expect(catchAll.cost('openai/gpt-4o', { promptTokens: 1e6, completionTokens: 0 })).toBeCloseTo(2.5)
  })

  it('counts a text seen before the same as the first time, per encoding, also once the cache was emptied', async () => {
    const o200k = await encoderFor('o200k_base')
    const cl100k = await encoderFor('cl100k_base')
    const { countTokens: direct200k } = await import('gpt-tokenizer/encoding/o200k_base')
    const { countTokens: direct100k } = await import('gpt-tokenizer/encoding/cl100k_base')
    // Counts that differ between the two encodings: a cache shared by encodings would mix them up.
    const text = 'Привет, мир! こんにちは世界 — 你好，世界'
    const noSpecial = { disallowedSpecial: new Set<string>() }
    expect(direct200k(text, noSpecial)).not.toBe(direct100k(text, noSpecial))
    for (let pass = 0; pass < 2; pass++) {
      expect(o200k.count(text)).toBe(direct200k(text, noSpecial))
      expect(cl100k.count(text)).toBe(direct100k(text, noSpecial))
    }
    // More distinct texts than the cache holds, then the first ones again.
    const texts = Array.from(
      { length: COUNT_CACHE_ENTRIES + 10 },
      (_, i) => `text ${i} ${'word '.repeat(i % 7)}`,
    )
    const first = texts.map((t) => o200k.count(t))
    expect(texts.map((t) => o200k.count(t))).toEqual(first)
    expect(first).toEqual(texts.map((t) => direct200k(t, noSpecial)))
    // A text too long for the cache is counted each time, the same.
    const long = 'lorem ipsum '.repeat(Math.ceil(COUNT_CACHE_CHARS / 12) + 1)
    expect(o200k.count(long)).toBe(direct200k(long, noSpecial))
    expect(o200k.count(long)).toBe(direct200k(long, noSpecial))
  })

  it('rounds dollar amounts to 12 significant digits the same way when an amount comes again', () => {
    const amounts = Array.from({ length: 5_000 }, (_, i) => ((i * 7919) % 100_003) * 0.15e-6 + i * 1e-13)
    amounts.push(0, -0, 0.1 + 0.2, 1 / 3, 2.5e-7 * 3, 123456789.12345679)
    for (let pass = 0; pass < 2; pass++) {
      for (const x of amounts) expect(round(x)).toBe(Number(x.toPrecision(12)))
    }
  })
})
