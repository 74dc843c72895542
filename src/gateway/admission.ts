/**
 * The cheap checks the gateway makes before it reads a body or counts a token: is this subject
 * already sure to be denied, and can this request's size ever fit its tier? Neither costs a store
 * round trip.
 */
import { capacityOf, tokenBucket } from '../core/limits.js'
import type { Admission } from '../http/index.js'
import { type Costs, type Decision, Limiter } from '../limiter.js'
import { CachedStore } from '../store/blocked-cache.js'
import type { StoreOp, StoreResult } from '../store/types.js'

/** A body whose subject was found denied once it had arrived: answered with the refusal, unparsed. */
export class RefusedBeforeParsing extends Error {
  override name = 'RefusedBeforeParsing'
  constructor(readonly admission: Admission) {
    super('refused before parsing')
  }
}

/** The cheapest call there is: a subject denied even this (blocked, out of requests) is refused before its body. */
export const CHEAPEST_CALL: Costs = { requests: 1, tokens: 0, usd: 0, concurrent: 0 }

interface SyncStore {
  executeSync(op: StoreOp): StoreResult
}

function isSyncStore(store: object): store is SyncStore {
  return typeof (store as Partial<SyncStore>).executeSync === 'function'
}

/**
 * Whether the subject's cheapest call is sure to be denied, known without a store round trip: an
 * in-process store (MemoryStore) is peeked; a Redis tier asks its blocked-key cache (blocks and
 * recent denials it learned); any other store says no and lets the reservation decide.
 */
export function knownDenied(limiter: Limiter, subject: string): boolean | Promise<boolean> {
  const store = limiter.store
  if (isSyncStore(store)) return limiter.peek(subject, CHEAPEST_CALL).then((d) => !d.allowed)
  if (store instanceof CachedStore) {
    const keys = limiter.keysFor(subject)
    const op: StoreOp = {
      mode: 'reserve',
      id: '-',
      stateKey: keys.state,
      keys: keys.limits,
      names: limiter.names,
      limits: limiter.definitions,
      costs: limiter.costsFor(CHEAPEST_CALL),
    }
    if (limiter.block) op.block = { params: limiter.block, key: keys.block, strikesKey: keys.strikes }
    return store.cache.check(op) !== undefined
  }
  return false
}

/** Whether costs exceed the capacity of one of the limiter's token or dollar limits: no wait lets them pass. */
export function exceedsCapacity(limiter: Limiter, costs: { tokens: number; usd: number }): boolean {
  for (const limit of limiter.definitions) {
    if (limit.unit === 'tokens' && costs.tokens > capacityOf(limit)) return true
    if (limit.unit === 'usd' && costs.usd > capacityOf(limit)) return true
  }
  return false
}

/** The smallest capacity among the limiter's token limits (Infinity without one). */
export function tokenCapacity(limiter: Limiter): number {
  let capacity = Number.POSITIVE_INFINITY
  for (const limit of limiter.definitions) {
    if (limit.unit === 'tokens') capacity = Math.min(capacity, capacityOf(limit))
  }
  return capacity
}

const DAY_MS = 86_400_000

/**
 * Counts a strike toward a subject's block for a request larger than a limit can ever hold. The
 * store counts only denials that waiting would help, but the same oversized body sent again and
 * again is abuse, and a block is what stops its uploads (refused before the body, above).
 *
 * A second limiter under the tier's policy name and prefix shares the tier's block and strike keys
 * (they do not depend on the limits: Limiter.keysFor) and holds one bucket that is spent once and
 * then refills over a day: its denial is a strike like any other, and a block it starts is the
 * tier's own block (lifted by `sluice unblock`, seen by every instance).
 */
export class OversizeStrikes {
  private readonly limiters = new WeakMap<Limiter, Limiter | null>()

  /** The decision of the strike (blocked when it started a block), or undefined when the tier does not block. */
  async strike(limiter: Limiter, subject: string): Promise<Decision | undefined> {
    const striker = this.strikerFor(limiter)
    if (striker === null) return undefined
    const keys = limiter.keysFor(subject)
    const own = striker.keysFor(subject)
    if (own.block !== keys.block || own.strikes !== keys.strikes) return undefined
    let decision = await striker.consume(subject)
    // The bucket's first charge in a day passes; the next is the denial that counts.
    if (decision.allowed) decision = await striker.consume(subject)
    return decision
  }

  private strikerFor(limiter: Limiter): Limiter | null {
    let striker = this.limiters.get(limiter)
    if (striker === undefined) {
      const block = limiter.block
      striker =
        block === undefined
          ? null
          : new Limiter({
              store: limiter.store,
              policy: limiter.policy,
              prefix: limiter.prefix,
              limits: { oversize: tokenBucket({ capacity: 1, refillPerSecond: 1000 / DAY_MS }) },
              block: { ...block, durationsMs: [...block.durationsMs] },
            })
      this.limiters.set(limiter, striker)
    }
    return striker
  }
}
