/**
 * The gateway's key resolver: keys from sluice.yaml (by the hash of the whole key, read-only) and
 * keys from the control plane's database (`sk-sluice-<id>-<secret>`, through the in-process
 * KeyCache, so a known key is answered from memory and the request never waits on the database).
 */
import type { Logger } from 'pino'
import type { Budgets } from '../control/budgets.js'
import { type KeyCache, KeyLookupUnavailableError } from '../control/key-cache.js'
import type { KeyQueue } from '../control/key-queue.js'
import type { KeyInfo } from '../control/key-records.js'
import type { LimitOverrides } from '../control/validate.js'
import { calendar, type LimitDefinition } from '../core/limits.js'
import { type KeyConfig, type KeyRecord, MemoryKeyRegistry } from '../http/keys.js'
import type { TierQueue } from '../http/tiers.js'
import { StoreUnavailableError } from '../store/errors.js'
import { limitSchema } from './config/schema.js'
import { limitFromConfig } from './tiers.js'

/** A key override as the core takes it: a definition, or null to remove the tier's limit. */
type Overrides = Record<string, LimitDefinition | null>

/** Converts stored overrides (sluice.yaml's limit form) with the config's own schema and factories. */
export function overridesFromConfig(limits: LimitOverrides, keyId: string): Overrides {
  const out: Overrides = {}
  for (const [name, spec] of Object.entries(limits)) {
    if (spec === null) {
      out[name] = null
      continue
    }
    const parsed = limitSchema.safeParse(spec)
    if (!parsed.success) {
      throw new Error(`key ${keyId}: limits.${name} does not fit the limit schema: ${parsed.error.message}`)
    }
    out[name] = limitFromConfig(parsed.data)
  }
  return out
}

/** The calendar limits of budgets, named `budget_usd` and `budget_tokens`. */
export function budgetLimits(
  budgets: Budgets | null | undefined,
  utcOffset: string | number,
): Record<string, LimitDefinition> {
  const out: Record<string, LimitDefinition> = {}
  if (budgets?.usd) out.budget_usd = calendar({ ...budgets.usd, utcOffset, unit: 'usd' })
  if (budgets?.tokens) out.budget_tokens = calendar({ ...budgets.tokens, utcOffset, unit: 'tokens' })
  return out
}

export class ControlKeyRegistry extends MemoryKeyRegistry {
  private cache: KeyCache | undefined
  /** One record per cached KeyInfo: the core caches a key's limiter by its limits object. */
  private readonly fromDatabase = new WeakMap<KeyInfo, KeyRecord | null>()
  private readonly warned = new Set<string>()

  constructor(
    entries: readonly KeyConfig[],
    private readonly options: {
      tierExists: (tier: string) => boolean
      logger: Logger
      /** The calendar of the keys' budgets (database.budgetUtcOffset). */
      utcOffset: string | number
    },
  ) {
    super(entries)
  }

  /** Database keys come through this cache from now on. */
  attach(cache: KeyCache): void {
    this.cache = cache
  }

  resolve(key: string, hash: string): KeyRecord | undefined | Promise<KeyRecord | undefined> {
    const local = this.lookup(hash)
    if (local !== undefined || this.cache === undefined) return local
    let found: KeyInfo | undefined | Promise<KeyInfo | undefined>
    try {
      found = this.cache.lookup(key)
    } catch (error) {
      throw unavailable(error)
    }
    if (found instanceof Promise) {
      return found.then(
        (info) => this.recordOf(info),
        (error: unknown) => {
          throw unavailable(error)
        },
      )
    }
    return this.recordOf(found)
  }

  /** The record the gateway charges a database key on (also what the admin API inspects). */
  recordOf(info: KeyInfo | undefined): KeyRecord | undefined {
    if (info === undefined) return undefined
    const known = this.fromDatabase.get(info)
    if (known !== undefined) return known ?? undefined
    let record: KeyRecord | null = null
    if (this.options.tierExists(info.tier)) {
      record = { id: info.id, tier: info.tier, name: info.name }
      if (info.user !== null) record.user = info.user
      // The team rides on the record into the identity: ControlLevels adds its level.
      if (info.team !== null) record.team = info.team
      if (info.queue !== null) record.queue = queueOf(info.queue)
      if (info.limits !== null || info.budgets !== null) {
        // A key's budgets are calendar limits of its own level, beside its overrides.
        record.limits = {
          ...(info.limits === null ? {} : overridesFromConfig(info.limits, info.id)),
          ...budgetLimits(info.budgets, this.options.utcOffset),
        } as Record<string, LimitDefinition>
      }
    } else if (!this.warned.has(info.id)) {
      if (this.warned.size > 1000) this.warned.clear()
      this.warned.add(info.id)
      this.options.logger.error(
        { keyId: info.id, tier: info.tier },
        `key ${info.id} names tier "${info.tier}", which sluice.yaml does not define: it is refused (401) until its tier is changed or defined`,
      )
    }
    this.fromDatabase.set(info, record)
    return record ?? undefined
  }
}

/** A database key's queue settings as the admission step reads them (milliseconds, flow = subject). */
function queueOf(queue: KeyQueue): Partial<TierQueue> {
  const out: Partial<TierQueue> = {}
  if (queue.maxWait !== undefined) out.maxWaitMs = queue.maxWait
  if (queue.maxQueued !== undefined) out.maxQueued = queue.maxQueued
  if (queue.maxQueuedPerSubject !== undefined) out.maxQueuedPerFlow = queue.maxQueuedPerSubject
  if (queue.weight !== undefined) out.weight = queue.weight
  return out
}

function unavailable(error: unknown): unknown {
  if (!(error instanceof KeyLookupUnavailableError)) return error
  return new StoreUnavailableError('the key database did not answer', { cause: error, retryAfterMs: 1000 })
}
