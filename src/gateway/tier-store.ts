import type { Store, StoreOp, StoreResult } from '../store/types.js'

/**
 * One Store for the HTTP core that sends each op to its tier's own store: the core keeps one store
 * for all tiers, while the gateway gives each tier its own outage policy (a GuardedStore view).
 *
 * The tier is read from the op's keys: a Limiter names every key `<prefix>{<policy>:<subject>}…`
 * (the hash tag that keeps one subject's keys in one cluster slot), and the HTTP core uses the tier
 * name as the policy. Key overrides share their tier's policy name, so they follow their tier.
 */
export class TierRoutedStore implements Store {
  constructor(
    private readonly byPolicy: ReadonlyMap<string, Store>,
    /** For policies without a store of their own. */
    private readonly fallback: Store,
  ) {}

  /** The store ops on `key` go to. */
  storeFor(key: string | undefined): Store {
    if (key === undefined) return this.fallback
    const open = key.indexOf('{')
    const colon = open === -1 ? -1 : key.indexOf(':', open + 1)
    if (colon === -1) return this.fallback
    return this.byPolicy.get(key.slice(open + 1, colon)) ?? this.fallback
  }

  execute(op: StoreOp): Promise<StoreResult> {
    return this.storeFor(op.keys[0]).execute(op)
  }

  ping(): Promise<void> {
    return this.fallback.ping()
  }

  /** Closes the fallback store; the gateway closes what the views share (guard, bus) itself. */
  close(): Promise<void> {
    return this.fallback.close()
  }
}
