import { describe, expect, it } from 'vitest'
import {
  anthropicPromptParts,
  IMAGE_MAX_TOKENS,
  imageSize,
  imageTokens,
} from '../../src/gateway/dialects/anthropic-prompt.js'
import { AnthropicStreamTracker } from '../../src/gateway/dialects/anthropic-usage.js'
import { anthropic, openai } from '../../src/gateway/dialects/index.js'
import { PriceTable } from '../../src/gateway/prices.js'

const prices = new PriceTable()

describe('OpenAI usage, priced as billed', () => {
  it('prices cached tokens once, at the cached price, and counts reasoning tokens as output', () => {
    const usage = openai.usageOf({
      usage: {
        prompt_tokens: 2000,
        completion_tokens: 500,
        total_tokens: 2500,
        prompt_tokens_details: { cached_tokens: 1536 },
        completion_tokens_details: { reasoning_tokens: 300 },
      },
    })!
    expect(usage).toEqual({
      promptTokens: 2000,
      completionTokens: 500,
      cachedTokens: 1536,
      reasoningTokens: 300,
    })
    const cost = prices.breakdown('gpt-4o', usage)
    expect(cost.inputUsd).toBeCloseTo((464 * 2.5) / 1e6, 12)
    expect(cost.cachedUsd).toBeCloseTo((1536 * 1.25) / 1e6, 12)
    expect(cost.outputUsd).toBeCloseTo((500 * 10) / 1e6, 12)
    expect(cost.usd).toBeCloseTo((464 * 2.5 + 1536 * 1.25 + 500 * 10) / 1e6, 12)
  })

  it("reads the Responses API's names", () => {
    expect(
      openai.usageOf({
        usage: {
          input_tokens: 100,
          input_tokens_details: { cached_tokens: 64 },
          output_tokens: 20,
          output_tokens_details: { reasoning_tokens: 12 },
        },
      }),
    ).toEqual({ promptTokens: 100, completionTokens: 20, cachedTokens: 64, reasoningTokens: 12 })
  })

  it('takes price overrides per kind, defaulting cache prices to the input price', () => {
    const table = new PriceTable({ 'my-model': { input: 2, output: 4 } })
    expect(table.cost('my-model', { promptTokens: 1e6, completionTokens: 0, cachedTokens: 5e5 })).toBeCloseTo(
      2,
    )
    const custom = new PriceTable({ 'my-model': { input: 2, output: 4, cachedInput: 0.5, cacheWrite: 3 } })
    expect(
      custom.cost('my-model', {
        promptTokens: 3e6,
        completionTokens: 1e6,
        cachedTokens: 1e6,
        cacheWriteTokens: 1e6,
      }),
    ).toBeCloseTo(2 + 0.5 + 3 + 4)
  })
})

describe('Anthropic usage', () => {
  it('adds cache reads and writes to input_tokens, each kind at its price', () => {
    const usage = anthropic.usageOf({
      usage: {
        input_tokens: 10,
        cache_read_input_tokens: 3000,
        cache_creation_input_tokens: 200,
        output_tokens: 50,
      },
    })!
    expect(usage).toMatchObject({
      promptTokens: 3210,
      cachedTokens: 3000,
      cacheWriteTokens: 200,
      cacheWrite1hTokens: 0,
    })
    expect(prices.cost('claude-sonnet-4-6', usage)).toBeCloseTo(
      (10 * 3 + 3000 * 0.3 + 200 * 3.75 + 50 * 15) / 1e6,
      12,
    )
  })

  it("settles a stream from message_delta's final output, keeping message_start's prompt", () => {
    const tracker = new AnthropicStreamTracker()
    const event = (data: object) => `event: x\ndata: ${JSON.stringify(data)}`
    tracker.onEvent(
      event({
        type: 'message_start',
        message: {
          usage: {
            input_tokens: 7,
            cache_read_input_tokens: 100,
            cache_creation_input_tokens: 0,
            output_tokens: 1,
          },
        },
      }),
    )
    expect(tracker.usage).toMatchObject({ promptTokens: 107, completionTokens: 1, partial: true })
    tracker.onEvent(
      event({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Hi' } }),
    )
    tracker.onEvent(
      event({ type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 33 } }),
    )
    tracker.onEvent(event({ type: 'message_stop' }))
    expect(tracker.usage).toEqual({
      promptTokens: 107,
      completionTokens: 33,
      cachedTokens: 100,
      cacheWriteTokens: 0,
      cacheWrite1hTokens: 0,
    })
    expect(tracker.text).toBe('Hi')
    expect(tracker.complete).toBe(true)
  })
})

describe('Anthropic usage in a message_delta that repeats the prompt counts', () => {
  it("keeps message_start's 1-hour cache writes when the delta gives no breakdown", () => {
    const tracker = new AnthropicStreamTracker()
    const event = (data: object) => `data: ${JSON.stringify(data)}`
    tracker.onEvent(
      event({
        type: 'message_start',
        message: {
          usage: {
            input_tokens: 5,
            cache_creation_input_tokens: 300,
            cache_creation: { ephemeral_5m_input_tokens: 100, ephemeral_1h_input_tokens: 200 },
            cache_read_input_tokens: 0,
            output_tokens: 0,
          },
        },
      }),
    )
    tracker.onEvent(
      event({
        type: 'message_delta',
        delta: {},
        usage: {
          input_tokens: 5,
          cache_creation_input_tokens: 300,
          cache_read_input_tokens: 0,
          output_tokens: 9,
        },
      }),
    )
    expect(tracker.usage).toEqual({
      promptTokens: 305,
      completionTokens: 9,
      cachedTokens: 0,
      cacheWriteTokens: 100,
      cacheWrite1hTokens: 200,
    })
  })
})

describe("Anthropic's image formula", () => {
  function png(width: number, height: number): string {
    const head = Buffer.alloc(33)
    head.writeUInt32BE(0x89504e47, 0)
    head.writeUInt32BE(0x0d0a1a0a, 4)
    head.writeUInt32BE(13, 8)
    head.write('IHDR', 12, 'latin1')
    head.writeUInt32BE(width, 16)
    head.writeUInt32BE(height, 20)
    return head.toString('base64')
  }

  it('is width × height / 750, after scaling down to the documented bounds', () => {
    expect(imageTokens(200, 200)).toBe(54)
    expect(imageTokens(1000, 1000)).toBe(1334)
    expect(imageTokens(1092, 1092)).toBe(1590)
    // 4000 × 2000 is scaled to 1568 × 784 first.
    expect(imageTokens(4000, 2000)).toBe(Math.ceil((1568 * 784) / 750))
    expect(imageSize(Buffer.from(png(640, 480), 'base64'))).toEqual({ width: 640, height: 480 })
  })

  it('reads the size of a base64 image in a message; an image it cannot size costs the most', () => {
    const block = (data: string) => ({
      model: 'claude-sonnet-4-6',
      max_tokens: 1,
      messages: [
        {
          role: 'user',
          content: [{ type: 'image', source: { type: 'base64', media_type: 'image/png', data } }],
        },
      ],
    })
    const small = anthropicPromptParts(block(png(200, 200)))
    const unknown = anthropicPromptParts(block('bm90IGFuIGltYWdl'))
    expect(unknown.fixed - small.fixed).toBe(IMAGE_MAX_TOKENS - 54)
  })
})
