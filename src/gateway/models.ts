import type { EncodingName, GatewayConfig, ModelConfig } from './config/schema.js'
import { PatternTable } from './patterns.js'
import { encodingForModel } from './tokens.js'

export interface ModelRoute {
  upstream: string
  encoding: EncodingName
  /** Completion tokens expected when the request names no maximum. */
  defaultOutputTokens: number
}

/** Per-model settings from `models:` (exact names or globs), with the global defaults underneath. */
export class ModelTable {
  private readonly table: PatternTable<ModelConfig>
  private readonly cache = new Map<string, ModelRoute>()

  constructor(private readonly config: Pick<GatewayConfig, 'models' | 'defaultUpstream' | 'accounting'>) {
    this.table = new PatternTable(config.models)
  }

  route(model: string): ModelRoute {
    let route = this.cache.get(model)
    if (!route) {
      const entry = this.table.match(model)
      route = {
        upstream: entry?.upstream ?? this.config.defaultUpstream,
        encoding: entry?.encoding ?? encodingForModel(model),
        defaultOutputTokens: entry?.defaultOutputTokens ?? this.config.accounting.defaultOutputTokens,
      }
      // Bounded: model names come from clients.
      if (this.cache.size >= 1000) this.cache.clear()
      this.cache.set(model, route)
    }
    return route
  }

  encodingOf = (model: string): EncodingName => this.route(model).encoding
}
