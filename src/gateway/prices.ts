import type { PriceConfig } from './config/schema.js'
import { PatternTable } from './patterns.js'

/**
 * USD per 1M tokens at the providers' standard list prices (2025): input, output (reasoning tokens
 * are output), cached input (a prompt-cache read) and, for Anthropic, cache writes (5 minutes: 1.25×
 * input; 1 hour: 2× input). Dated snapshots match through the globs. Override or extend under
 * `prices:` in sluice.yaml; models matched by nothing cost $0 (a local model), and the gateway logs
 * that once per model.
 */
export const DEFAULT_PRICES: Readonly<Record<string, PriceConfig>> = {
  // OpenAI: cached input at the discount OpenAI bills (no write price: OpenAI's cache is free to fill).
  'gpt-5*': { input: 1.25, output: 10, cachedInput: 0.125 },
  'gpt-5-mini*': { input: 0.25, output: 2, cachedInput: 0.025 },
  'gpt-5-nano*': { input: 0.05, output: 0.4, cachedInput: 0.005 },
  'gpt-4.1*': { input: 2, output: 8, cachedInput: 0.5 },
  'gpt-4.1-mini*': { input: 0.4, output: 1.6, cachedInput: 0.1 },
  'gpt-4.1-nano*': { input: 0.1, output: 0.4, cachedInput: 0.025 },
  'gpt-4o*': { input: 2.5, output: 10, cachedInput: 1.25 },
  'gpt-4o-2024-05-13': { input: 5, output: 15 },
  'gpt-4o-mini*': { input: 0.15, output: 0.6, cachedInput: 0.075 },
  'chatgpt-4o*': { input: 5, output: 15 },
  'gpt-4-turbo*': { input: 10, output: 30 },
  'gpt-4': { input: 30, output: 60 },
  'gpt-4-0613': { input: 30, output: 60 },
  'gpt-3.5-turbo*': { input: 0.5, output: 1.5 },
  'o1*': { input: 15, output: 60, cachedInput: 7.5 },
  'o1-mini*': { input: 1.1, output: 4.4, cachedInput: 0.55 },
  'o3*': { input: 2, output: 8, cachedInput: 0.5 },
  'o3-mini*': { input: 1.1, output: 4.4, cachedInput: 0.55 },
  'o4-mini*': { input: 1.1, output: 4.4, cachedInput: 0.275 },
  'text-embedding-3-small': { input: 0.02, output: 0 },
  'text-embedding-3-large': { input: 0.13, output: 0 },
  'text-embedding-ada-002': { input: 0.1, output: 0 },
  // Anthropic: cache reads 0.1× input, 5-minute writes 1.25×, 1-hour writes 2×.
  // Opus from 4.5 on; Opus 4 and 4.1 cost three times as much.
  'claude-opus-4*': { input: 5, output: 25, cachedInput: 0.5, cacheWrite: 6.25, cacheWrite1h: 10 },
  'claude-opus-4-0': { input: 15, output: 75, cachedInput: 1.5, cacheWrite: 18.75, cacheWrite1h: 30 },
  'claude-opus-4-2025*': { input: 15, output: 75, cachedInput: 1.5, cacheWrite: 18.75, cacheWrite1h: 30 },
  'claude-opus-4-1*': { input: 15, output: 75, cachedInput: 1.5, cacheWrite: 18.75, cacheWrite1h: 30 },
  'claude-sonnet-4*': { input: 3, output: 15, cachedInput: 0.3, cacheWrite: 3.75, cacheWrite1h: 6 },
  'claude-3-7-sonnet*': { input: 3, output: 15, cachedInput: 0.3, cacheWrite: 3.75, cacheWrite1h: 6 },
  'claude-3-5-sonnet*': { input: 3, output: 15, cachedInput: 0.3, cacheWrite: 3.75, cacheWrite1h: 6 },
  'claude-haiku-4*': { input: 1, output: 5, cachedInput: 0.1, cacheWrite: 1.25, cacheWrite1h: 2 },
  'claude-3-5-haiku*': { input: 0.8, output: 4, cachedInput: 0.08, cacheWrite: 1, cacheWrite1h: 1.6 },
  'claude-3-haiku*': { input: 0.25, output: 1.25, cachedInput: 0.03, cacheWrite: 0.3, cacheWrite1h: 0.5 },
}

/**
 * Token counts by how they are billed. `promptTokens` holds every input token (cached and
 * cache-written ones too) and `completionTokens` every output token (reasoning included).
 */
export interface Usage {
  promptTokens: number
  completionTokens: number
  /** Of the prompt: read from the prompt cache. */
  cachedTokens?: number
  /** Of the prompt: written to a 5-minute cache. */
  cacheWriteTokens?: number
  /** Of the prompt: written to a 1-hour cache. */
  cacheWrite1hTokens?: number
}

/** The USD of each kind of token in a call, and their sum. */
export interface CostBreakdown {
  /** Input tokens neither read from nor written to a cache. */
  inputUsd: number
  cachedUsd: number
  /** 5-minute and 1-hour cache writes. */
  cacheWriteUsd: number
  outputUsd: number
  usd: number
}

const ZERO: CostBreakdown = { inputUsd: 0, cachedUsd: 0, cacheWriteUsd: 0, outputUsd: 0, usd: 0 }

/**
 * Amounts already rounded, by amount: a call prices the same few amounts again and again (a
 * model's price times a token count), and toPrecision's string round trip cost ~0.3-0.5 µs each,
 * ten times per call. Bounded; emptied when full.
 */
const ROUNDED_MAX = 4_096
const rounded = new Map<number, number>()

/** Twelve significant digits: the same number in the store and the ledger. */
export function round(usd: number): number {
  if (usd === 0) return 0
  let r = rounded.get(usd)
  if (r === undefined) {
    r = Number(usd.toPrecision(12))
    if (rounded.size >= ROUNDED_MAX) rounded.clear()
    rounded.set(usd, r)
  }
  return r
}

/**
 * Turns token counts into dollars for a model. Config entries replace built-in ones of the same
 * name; among the rest the exact name, else the most specific glob, wins ("*" catches the rest).
 */
export class PriceTable {
  private readonly table: PatternTable<PriceConfig>

  constructor(overrides: Record<string, PriceConfig> = {}) {
    this.table = new PatternTable({ ...DEFAULT_PRICES, ...overrides })
  }

  /** The price of a model, or undefined when no entry matches. */
  priceOf(model: string): PriceConfig | undefined {
    return this.table.match(model)
  }

  /** USD of each kind of token (all 0 for unpriced models). Each cached token is priced once, as cached. */
  breakdown(model: string, usage: Usage): CostBreakdown {
    const price = this.priceOf(model)
    if (!price) return ZERO
    const cached = usage.cachedTokens ?? 0
    const write5m = usage.cacheWriteTokens ?? 0
    const write1h = usage.cacheWrite1hTokens ?? 0
    const plain = Math.max(0, usage.promptTokens - cached - write5m - write1h)
    const writePrice = price.cacheWrite ?? price.input
    const inputUsd = round((plain * price.input) / 1_000_000)
    const cachedUsd = round((cached * (price.cachedInput ?? price.input)) / 1_000_000)
    const cacheWriteUsd = round(
      (write5m * writePrice + write1h * (price.cacheWrite1h ?? writePrice)) / 1_000_000,
    )
    const outputUsd = round((usage.completionTokens * price.output) / 1_000_000)
    return {
      inputUsd,
      cachedUsd,
      cacheWriteUsd,
      outputUsd,
      usd: round(inputUsd + cachedUsd + cacheWriteUsd + outputUsd),
    }
  }

  /** USD for the given usage (0 for unpriced models). */
  cost(model: string, usage: Usage): number {
    return this.breakdown(model, usage).usd
  }
}
