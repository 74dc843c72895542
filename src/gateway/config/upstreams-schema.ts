import { z } from 'zod'
import { duration, durationOrZero, nonNegative, positiveInt } from './primitives.js'

/** Encodings gpt-tokenizer ships; `o200k_base` is the fallback for models it does not know. */
export const ENCODINGS = [
  'o200k_base',
  'o200k_harmony',
  'cl100k_base',
  'p50k_base',
  'p50k_edit',
  'r50k_base',
] as const
export type EncodingName = (typeof ENCODINGS)[number]

const connection = {
  /** Connections kept per upstream. */
  connections: positiveInt.default(128),
  connectTimeout: duration.default(10_000),
  /** Time until the upstream sends its response headers (covers a slow first token on non-streams). */
  headersTimeout: duration.default(300_000),
  /** Longest silence between two chunks of the upstream body. */
  bodyTimeout: duration.default(300_000),
}

const mockUpstreamSchema = z.strictObject({
  type: z.literal('mock'),
  ...connection,
  /** Delay before the first byte of every answer. */
  latency: durationOrZero.default(0),
  /** Pace of streamed (and non-streamed) output; 0 answers at once. */
  tokensPerSecond: nonNegative.default(0),
  /** Length of a completion when max_tokens does not cut it shorter, chosen per prompt. */
  completionTokens: z
    .strictObject({ min: positiveInt, max: positiveInt })
    .refine((r) => r.min <= r.max, { message: 'min must not exceed max' })
    .default({ min: 16, max: 96 }),
  embeddingDimensions: positiveInt.default(256),
  /**
   * The mock's own provider account, per minute: it answers with the provider's rate-limit
   * headers and 429s, as OpenAI and Anthropic do (to try deployments and fallbacks offline).
   */
  rateLimits: z.strictObject({ requests: positiveInt.optional(), tokens: positiveInt.optional() }).optional(),
})

const openaiUpstreamSchema = z.strictObject({
  type: z.literal('openai'),
  /** Base URL up to and including /v1, e.g. https://api.openai.com/v1 or http://localhost:11434/v1. */
  baseUrl: z.url({
    protocol: /^https?$/,
    error: 'expected an http(s) URL such as https://api.openai.com/v1',
  }),
  /** Environment variable holding the upstream API key (read at start-up). */
  apiKeyEnv: z.string().min(1).default('OPENAI_API_KEY'),
  /** Extra headers sent upstream (e.g. OpenAI-Organization). */
  headers: z.record(z.string(), z.string()).default({}),
  /**
   * Ask for a usage chunk on streams (stream_options.include_usage) when the client did not, and
   * hide it again. Turn off for servers that reject stream_options; streamed text is counted then.
   */
  injectStreamUsage: z.boolean().default(true),
  ...connection,
})

const anthropicUpstreamSchema = z.strictObject({
  type: z.literal('anthropic'),
  /** Base URL up to and including /v1, e.g. https://api.anthropic.com/v1. */
  baseUrl: z
    .url({
      protocol: /^https?$/,
      error: 'expected an http(s) URL such as https://api.anthropic.com/v1',
    })
    .default('https://api.anthropic.com/v1'),
  /** Environment variable holding the upstream API key (read at start-up), sent as x-api-key. */
  apiKeyEnv: z.string().min(1).default('ANTHROPIC_API_KEY'),
  /** Extra headers sent upstream. */
  headers: z.record(z.string(), z.string()).default({}),
  ...connection,
})

export const upstreamSchema = z.discriminatedUnion('type', [
  mockUpstreamSchema,
  openaiUpstreamSchema,
  anthropicUpstreamSchema,
])
export type MockUpstreamConfig = z.output<typeof mockUpstreamSchema>
export type OpenAIUpstreamConfig = z.output<typeof openaiUpstreamSchema>
export type AnthropicUpstreamConfig = z.output<typeof anthropicUpstreamSchema>
export type UpstreamConfig = z.output<typeof upstreamSchema>

export const modelSchema = z.strictObject({
  /** Upstream that serves this model (default: defaultUpstream). */
  upstream: z.string().min(1).optional(),
  /** Tokenizer encoding for estimates (default: by model name, else o200k_base). */
  encoding: z.enum(ENCODINGS).optional(),
  /** Expected completion length when the request gives no max_tokens. */
  defaultOutputTokens: positiveInt.optional(),
})
export type ModelConfig = z.output<typeof modelSchema>

export const priceSchema = z.strictObject({
  /** USD per 1M input (prompt) tokens. */
  input: nonNegative,
  /** USD per 1M output (completion) tokens, reasoning tokens included. */
  output: nonNegative.default(0),
  /** USD per 1M input tokens read from the provider's prompt cache (default: the input price). */
  cachedInput: nonNegative.optional(),
  /** USD per 1M input tokens written to a 5-minute cache (default: the input price). */
  cacheWrite: nonNegative.optional(),
  /** USD per 1M input tokens written to a 1-hour cache (default: the 5-minute write price). */
  cacheWrite1h: nonNegative.optional(),
})
export type PriceConfig = z.output<typeof priceSchema>
