import type { EncodingName } from './config/schema.js'
import { CountPool } from './count-pool.js'
import { countParts, encoderFor, type PromptParts, scaled } from './tokens.js'

/**
 * The longest token of every encoding the gateway uses, in UTF-8 bytes (128 in o200k_base,
 * o200k_harmony, cl100k_base, p50k_* and r50k_base; test/gateway/counting.test.ts derives it from
 * the vocabularies). A text of B bytes is therefore at least ⌈B / 128⌉ tokens, whatever it says.
 */
export const LONGEST_TOKEN_BYTES = 128

/**
 * The fewest tokens the parts can count as. Uses UTF-16 length, never above the UTF-8 byte length,
 * so the bound holds for any text, and costs nothing to compute.
 */
export function lowerBound(parts: PromptParts): number {
  let total = 0
  for (const text of parts.texts) total += Math.ceil(text.length / LONGEST_TOKEN_BYTES)
  return parts.fixed + scaled(total, parts.scale)
}

/** The most tokens the parts can count as: every token is at least one byte. */
export function upperBound(parts: PromptParts): number {
  let total = 0
  for (const text of parts.texts) total += Buffer.byteLength(text, 'utf8')
  return parts.fixed + scaled(total, parts.scale)
}

export function textLength(parts: PromptParts): number {
  let total = 0
  for (const text of parts.texts) total += text.length
  return total
}

export interface TokenCount {
  tokens: number
  /** False when the count is the upper bound, because counting would have taken too long. */
  exact: boolean
}

export interface CountingOptions {
  /** Up to this many characters are counted on the event loop (a few ms at worst). */
  inlineChars?: number
  /** Above this many characters nothing is counted: the upper bound is used. */
  exactChars?: number
  /** Longest wait for a worker's count before the upper bound is used. */
  deadlineMs?: number
  pool?: CountPool
}

export const COUNTING_DEFAULTS = {
  inlineChars: 4_096,
  exactChars: 1_000_000,
  deadlineMs: 2_000,
} as const

/**
 * Counts prompts and answers in bounded time, whatever the text: small texts on the event loop,
 * larger ones in worker threads with a deadline, and the largest (or any the workers cannot take
 * in time) as their upper bound. Counting is linear in the text in every case (long-runs.ts).
 */
export class TokenCounter {
  readonly inlineChars: number
  readonly exactChars: number
  readonly deadlineMs: number
  readonly pool: CountPool

  constructor(options: CountingOptions = {}) {
    this.inlineChars = options.inlineChars ?? COUNTING_DEFAULTS.inlineChars
    this.exactChars = options.exactChars ?? COUNTING_DEFAULTS.exactChars
    this.deadlineMs = options.deadlineMs ?? COUNTING_DEFAULTS.deadlineMs
    this.pool = options.pool ?? new CountPool()
  }

  async count(encoding: EncodingName, parts: PromptParts): Promise<TokenCount> {
    const chars = textLength(parts)
    if (chars <= this.inlineChars) {
      return { tokens: countParts(await encoderFor(encoding), parts), exact: true }
    }
    if (chars <= this.exactChars) {
      const counted = await this.pool.count(encoding, parts.texts, chars, this.deadlineMs)
      if (counted !== undefined) return { tokens: parts.fixed + scaled(counted, parts.scale), exact: true }
    }
    return { tokens: upperBound(parts), exact: false }
  }

  /** The tokens of one text (e.g. an answer to settle), bounded the same way. */
  async countText(encoding: EncodingName, text: string): Promise<TokenCount> {
    return this.count(encoding, { fixed: 0, texts: [text] })
  }
}

let shared: TokenCounter | undefined

/** One counter (and worker pool) per process, shared by gateways and the mock upstream. */
export function sharedCounter(): TokenCounter {
  shared ??= new TokenCounter()
  return shared
}
