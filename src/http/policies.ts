/**
 * Tiers as limiters: each tier's Limiter over its store, the per-key overrides merged over a
 * tier's limits, shadow mode per tier, and what works across tiers (cost checks, unblock, inspect).
 */
import { describe, SluiceInputError } from '../core/errors.js'
import type { LimitDefinition } from '../core/limits.js'
import { type BlockOptions, type Costs, type Decision, Limiter } from '../limiter.js'
import type { Store } from '../store/types.js'
import type { KeyRecord } from './keys.js'
import type { Tier, TierQueue, TierScope } from './tiers.js'

/** A tier ready to count: its limiter, and whether a response must end to free a slot of it. */
export interface ResolvedTier {
  name: string
  scope: TierScope
  shadow: boolean
  limiter: Limiter
  hasConcurrency: boolean
  queue?: TierQueue | undefined
}

/** The limiter that counts an identity, whether it holds concurrency slots, and its tier's queue. */
export interface LimiterEntry {
  limiter: Limiter
  hasConcurrency: boolean
  queue?: TierQueue | undefined
}

export interface PoliciesOptions {
  tiers: Readonly<Record<string, Tier>>
  store: Store
  prefix: string | undefined
  alertAt: number | undefined
  /** For tiers that name no `block`. */
  block: BlockOptions | boolean
  /** For tiers that name no `shadow`. */
  shadow: boolean
}

/** Key overrides kept at most; past it the cache starts again (limiters are cheap to make). */
const KEY_LIMITERS_MAX = 10_000

export class Policies {
  private readonly resolved = new Map<string, ResolvedTier>()
  private readonly keyLimiters = new Map<string, LimiterEntry & { limits: object }>()
  /** The entry of each key record with queue settings of its own (records are made once per key version). */
  private readonly keyQueues = new WeakMap<KeyRecord, LimiterEntry>()
  /** The tier tier() found last (tiers are fixed once made). */
  private last: ResolvedTier | undefined

  constructor(private readonly options: PoliciesOptions) {
    for (const name of Object.keys(options.tiers)) this.resolve(name)
  }

  /** A tier by name, or undefined. */
  tier(name: string): ResolvedTier | undefined {
    // Requests come in runs of one tier, and an identity's tier name is the tier's own string:
    // comparing it with the last tier's is cheaper than the Map lookup (~75 instructions).
    const last = this.last
    if (last !== undefined && last.name === name) return last
    const tier = this.resolved.get(name)
    if (tier !== undefined) this.last = tier
    return tier
  }

  /** Every tier. */
  all(): IterableIterator<ResolvedTier> {
    return this.resolved.values()
  }

  /** Every tier's name, for messages. */
  names(): string {
    return [...this.resolved.keys()].join(', ')
  }

  /** The Limiter of a tier by name; throws on an unknown tier. */
  tierLimiter(tier: string): Limiter {
    const t = this.resolved.get(tier)
    if (t === undefined) throw new SluiceInputError(`unknown tier ${describe(tier)}`)
    return t.limiter
  }

  /** Whether shadow mode applies to a tier (its own `shadow`, else the global one). */
  isShadow(tier: string): boolean {
    return this.resolved.get(tier)?.shadow ?? this.options.shadow
  }

  /**
   * The tier of a key record, checked (an unknown tier throws), with its override limiter made
   * now when the record has limits of its own (so that bad limits fail when the key is loaded).
   */
  keyTier(record: KeyRecord): ResolvedTier {
    const tier = this.resolved.get(record.tier)
    if (tier === undefined) {
      throw new SluiceInputError(
        `key ${record.id} has tier ${describe(record.tier)}, which is not among the tiers (${this.names()})`,
      )
    }
    if (record.limits !== undefined) this.keyLimiter(record, tier)
    return tier
  }

  /**
   * The limiter of an identity: its tier's, or one with the key's own limit overrides merged over
   * the tier's (same policy name, so blocks and unblock apply to both).
   */
  entry(identity: { tier: string; key?: KeyRecord }): LimiterEntry {
    const tier = this.tier(identity.tier)
    if (tier === undefined) throw new SluiceInputError(`unknown tier ${describe(identity.tier)}`)
    const key = identity.key
    if (key === undefined) return tier
    const entry = key.limits !== undefined ? this.keyLimiter(key, tier) : tier
    return key.queue === undefined ? entry : this.keyQueue(key, key.queue, entry)
  }

  /** The entry with the key's queue settings over the tier's; a wait of 0 (or none at all): no queue. */
  private keyQueue(key: KeyRecord, queue: Partial<TierQueue>, entry: LimiterEntry): LimiterEntry {
    const cached = this.keyQueues.get(key)
    if (cached !== undefined && cached.limiter === entry.limiter) return cached
    const merged = { ...entry.queue, ...queue }
    const own: LimiterEntry = {
      limiter: entry.limiter,
      hasConcurrency: entry.hasConcurrency,
      queue: merged.maxWaitMs === undefined || merged.maxWaitMs === 0 ? undefined : (merged as TierQueue),
    }
    this.keyQueues.set(key, own)
    return own
  }

  /** Checks costs against every tier's limits (units they do not know throw), naming them `what`. */
  checkCosts(costs: Costs, what: string): void {
    for (const tier of this.resolved.values()) {
      try {
        tier.limiter.costsFor(costs)
      } catch (error) {
        if (error instanceof SluiceInputError) throw new SluiceInputError(`${what}: ${error.message}`)
        throw error
      }
    }
  }

  /** Lifts a block on a subject (`ip:…`, `user:…`, `key:…`) in every tier. */
  async unblock(subject: string): Promise<void> {
    await Promise.all([...this.resolved.values()].map((t) => t.limiter.unblock(subject)))
  }

  /** The current state of a subject in each tier whose scope matches it (charging nothing). */
  async inspect(subject: string): Promise<Record<string, Decision>> {
    const scope = subject.slice(0, subject.indexOf(':'))
    const out: Record<string, Decision> = {}
    for (const t of this.resolved.values()) {
      if (t.scope === scope) out[t.name] = await t.limiter.peek(subject, { requests: 0 })
    }
    return out
  }

  private limiterOf(name: string, limits: Tier['limits']): Limiter {
    const tier = this.options.tiers[name]!
    return new Limiter({
      store: tier.store ?? this.options.store,
      policy: name,
      prefix: this.options.prefix,
      limits,
      alertAt: this.options.alertAt,
      block: tier.block ?? this.options.block,
    })
  }

  private resolve(name: string): ResolvedTier {
    const tier = this.options.tiers[name]!
    let limiter: Limiter
    try {
      limiter = this.limiterOf(name, tier.limits)
    } catch (error) {
      if (error instanceof SluiceInputError) throw new SluiceInputError(`tiers.${name}: ${error.message}`)
      throw error
    }
    const resolved: ResolvedTier = {
      name,
      scope: tier.scope,
      shadow: tier.shadow ?? this.options.shadow,
      limiter,
      hasConcurrency: hasConcurrency(limiter),
      queue: tier.queue,
    }
    this.resolved.set(name, resolved)
    return resolved
  }

  private keyLimiter(record: KeyRecord, tier: ResolvedTier): LimiterEntry {
    const cacheKey = `${record.tier}\u0000${record.id}`
    const cached = this.keyLimiters.get(cacheKey)
    if (cached !== undefined && cached.limits === record.limits) return cached
    let limiter: Limiter
    try {
      limiter = this.limiterOf(
        tier.name,
        withoutRemoved({ ...this.options.tiers[tier.name]!.limits, ...record.limits }),
      )
    } catch (error) {
      if (error instanceof SluiceInputError)
        throw new SluiceInputError(`key ${record.id} limits: ${error.message}`)
      throw error
    }
    const entry = {
      limits: record.limits!,
      limiter,
      hasConcurrency: hasConcurrency(limiter),
      queue: tier.queue,
    }
    if (this.keyLimiters.size >= KEY_LIMITERS_MAX) this.keyLimiters.clear()
    this.keyLimiters.set(cacheKey, entry)
    return entry
  }
}

function hasConcurrency(limiter: Limiter): boolean {
  return limiter.definitions.some((d) => d.kind === 'concurrency')
}

/** A key's override of `null` removes the tier's limit of that name (limits from the control plane). */
function withoutRemoved(limits: Record<string, LimitDefinition | null>): Record<string, LimitDefinition> {
  const out: Record<string, LimitDefinition> = {}
  for (const [name, limit] of Object.entries(limits)) if (limit !== null) out[name] = limit
  return out
}
