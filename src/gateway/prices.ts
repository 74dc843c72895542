import type { PriceConfig } from './config/schema.js'
import { PatternTable } from './patterns.js'

/**
 * USD per 1M tokens (input, output) at OpenAI's standard list prices (2025). Dated snapshots match
 * through the globs. Override or extend under `prices:` in sluice.yaml; models matched by nothing
 * cost $0 (a local model), and the gateway logs that once per model.
 */
export const DEFAULT_PRICES: Readonly<Record<string, PriceConfig>> = {
  'gpt-5*': { input: 1.25, output: 10 },
  'gpt-5-mini*': { input: 0.25, output: 2 },
  'gpt-5-nano*': { input: 0.05, output: 0.4 },
  'gpt-4.1*': { input: 2, output: 8 },
  'gpt-4.1-mini*': { input: 0.4, output: 1.6 },
  'gpt-4.1-nano*': { input: 0.1, output: 0.4 },
  'gpt-4o*': { input: 2.5, output: 10 },
  'gpt-4o-2024-05-13': { input: 5, output: 15 },
  'gpt-4o-mini*': { input: 0.15, output: 0.6 },
  'chatgpt-4o*': { input: 5, output: 15 },
  'gpt-4-turbo*': { input: 10, output: 30 },
  'gpt-4': { input: 30, output: 60 },
  'gpt-4-0613': { input: 30, output: 60 },
  'gpt-3.5-turbo*': { input: 0.5, output: 1.5 },
  'o1*': { input: 15, output: 60 },
  'o1-mini*': { input: 1.1, output: 4.4 },
  'o3*': { input: 2, output: 8 },
  'o3-mini*': { input: 1.1, output: 4.4 },
  'o4-mini*': { input: 1.1, output: 4.4 },
  'text-embedding-3-small': { input: 0.02, output: 0 },
  'text-embedding-3-large': { input: 0.13, output: 0 },
  'text-embedding-ada-002': { input: 0.1, output: 0 },
}

export interface Usage {
  promptTokens: number
  completionTokens: number
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

  /** USD for the given usage (0 for unpriced models). */
  cost(model: string, usage: Usage): number {
    const price = this.priceOf(model)
    if (!price) return 0
    return (usage.promptTokens * price.input + usage.completionTokens * price.output) / 1_000_000
  }
}
