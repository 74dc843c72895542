import { requirePositiveInteger } from '../core/errors.js'
import { capacityOf, isInFlight, type LimitDefinition, windowSecondsOf } from '../core/limits.js'
import type { Store, StoreOp, StoreResult } from './types.js'

/**
 * Remembers recent denials so that a subject hammering a limit it has exhausted (or a block) is
 * answered in-process, without a store call — and stays exact:
 *
 * - A denial by limit i of cost c with retry r, learned from an op sent at local time t, proves
 *   that any later op on the same keys whose cost on limit i is at least c is denied before t + r
 *   (usage only grows and refills only reach that point at t + r) — unless something gave units
 *   back: a refund, reset or unblock. Those invalidate the entry here at once, and on other
 *   instances through an InvalidationBus (Redis pub/sub) when one is attached.
 * - A block proves that every op of the subject that checks blocks is denied until it ends.
 * - Denials by concurrency limits are never cached (a lease can be released at any moment), and
 *   plain limit denials are not cached for ops that count strikes toward a block (each denial must
 *   reach the store to count).
 * - Whatever else might change state unseen (a refund whose message was lost, a key evicted by the
 *   store), an entry is trusted for at most `maxAgeMs`: that is the staleness bound.
 */
export interface BlockedKeyCacheOptions {
  /** Subjects remembered at once (default 10,000); the oldest is dropped first. */
  maxEntries?: number
  /** Longest time a denial is trusted after it was learned, in ms (default 1,000). */
  maxAgeMs?: number
  /** Monotonic clock in ms (default performance.now). */
  now?: () => number
}

/** Carries invalidations between instances; see RedisInvalidationBus. */
export interface InvalidationBus {
  /** Tells the other instances that the subject whose first key is `key` got units back. */
  publish(key: string): void
}

export interface BlockedKeyCacheObserver {
  hit?(): void
  miss?(): void
}

interface Denial {
  index: number
  cost: number
  until: number
}

interface Entry {
  keys: readonly string[]
  limits: readonly LimitDefinition[]
  denials: Denial[]
  blockKey: string | undefined
  blockUntil: number
  learnedAt: number
  expiresAt: number
  result: StoreResult
}

const INVALIDATION_MEMORY_MS = 10_000

export class BlockedKeyCache {
  readonly maxEntries: number
  readonly maxAgeMs: number
  readonly now: () => number
  /** Ops answered from the cache, and consume/reserve ops that were not. */
  hits = 0
  misses = 0
  private readonly entries = new Map<string, Entry>()
  /** When each subject last got units back: a denial from an op sent before that is not learned. */
  private readonly invalidatedAt = new Map<string, number>()
  private readonly observers: BlockedKeyCacheObserver[] = []
  private bus: InvalidationBus | undefined

  constructor(options: BlockedKeyCacheOptions = {}) {
    this.maxEntries =
      options.maxEntries === undefined
        ? 10_000
        : requirePositiveInteger(options.maxEntries, 'BlockedKeyCache maxEntries')
    this.maxAgeMs =
      options.maxAgeMs === undefined
        ? 1_000
        : requirePositiveInteger(options.maxAgeMs, 'BlockedKeyCache maxAgeMs')
    this.now = options.now ?? (() => performance.now())
  }

  get size(): number {
    return this.entries.size
  }

  /** Sends invalidations to other instances through `bus` (one bus per cache). */
  attach(bus: InvalidationBus): void {
    this.bus = bus
  }

  observe(observer: BlockedKeyCacheObserver): () => void {
    this.observers.push(observer)
    return () => {
      const i = this.observers.indexOf(observer)
      if (i >= 0) this.observers.splice(i, 1)
    }
  }

  /** A store that answers known denials from this cache and asks `store` for the rest. */
  wrap(store: Store): Store {
    return new CachedStore(store, this)
  }

  /** The denial this op is sure to get, from what was learned; undefined when the store must decide. */
  check(op: StoreOp): StoreResult | undefined {
    if (op.mode !== 'consume' && op.mode !== 'reserve') return undefined
    const key = op.keys[0]
    const entry = key === undefined ? undefined : this.entries.get(key)
    const answer = entry === undefined ? undefined : this.answer(entry, op)
    if (answer === undefined) {
      this.misses++
      for (const o of this.observers) o.miss?.()
      return undefined
    }
    this.hits++
    for (const o of this.observers) o.hit?.()
    return answer
  }

  /** Learns from the store's answer to an op sent at `sentAt` (this cache's clock). */
  learn(op: StoreOp, result: StoreResult, sentAt: number): void {
    if (op.mode !== 'consume' && op.mode !== 'reserve') return
    if (result.fallback !== undefined) return // only what the store itself decided
    const key = op.keys[0]
    if (key === undefined) return
    if (result.allowed) {
      this.entries.delete(key)
      return
    }
    const invalidated = this.invalidatedAt.get(key)
    if (invalidated !== undefined && invalidated >= sentAt) return
    const denials: Denial[] = []
    if (op.block === undefined) {
      for (let i = 0; i < result.limits.length; i++) {
        const l = result.limits[i]!
        if (l.allowed || isInFlight(op.limits[i]!.kind)) continue
        if (!(l.retryAfterMs > 0) || !Number.isFinite(l.retryAfterMs)) continue
        denials.push({ index: i, cost: op.costs[i]!, until: sentAt + l.retryAfterMs })
      }
    }
    const blockUntil = op.block !== undefined && result.blockedMs > 0 ? sentAt + result.blockedMs : 0
    if (denials.length === 0 && blockUntil === 0) return
    let lastUntil = blockUntil
    for (const d of denials) lastUntil = Math.max(lastUntil, d.until)
    this.entries.delete(key)
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next().value
      if (oldest !== undefined) this.entries.delete(oldest)
    }
    this.entries.set(key, {
      keys: op.keys,
      limits: op.limits,
      denials,
      blockKey: op.block?.key,
      blockUntil,
      learnedAt: sentAt,
      expiresAt: Math.min(sentAt + this.maxAgeMs, lastUntil),
      result,
    })
  }

  /** Forgets what is known about the subject whose first key is `key`: it got units back. */
  invalidate(key: string): void {
    this.entries.delete(key)
    const now = this.now()
    this.invalidatedAt.delete(key)
    this.invalidatedAt.set(key, now)
    if (this.invalidatedAt.size > this.maxEntries) {
      for (const [k, at] of this.invalidatedAt) {
        if (at > now - INVALIDATION_MEMORY_MS && this.invalidatedAt.size <= this.maxEntries * 2) break
        this.invalidatedAt.delete(k)
      }
    }
  }

  /** Invalidates here and, through the bus, on the other instances. */
  invalidateEverywhere(key: string): void {
    this.invalidate(key)
    this.bus?.publish(key)
  }

  clear(): void {
    this.entries.clear()
  }

  private answer(entry: Entry, op: StoreOp): StoreResult | undefined {
    const now = this.now()
    if (now >= entry.expiresAt) {
      this.entries.delete(op.keys[0]!)
      return undefined
    }
    if (!sameKeys(entry.keys, op.keys)) return undefined
    let retryMs = 0
    const blocked = entry.blockUntil > now && op.block !== undefined && op.block.key === entry.blockKey
    if (blocked) retryMs = entry.blockUntil - now
    let matched: Denial | undefined
    if (!blocked && op.block === undefined) {
      for (const d of entry.denials) {
        if (now < d.until && op.costs[d.index]! >= d.cost && sameLimit(entry, op, d.index)) {
          if (matched === undefined || d.until > matched.until) matched = d
        }
      }
    }
    if (!blocked && matched === undefined) return undefined
    const elapsed = now - entry.learnedAt
    const r = entry.result
    return {
      now: r.now + elapsed,
      allowed: false,
      blockedMs: blocked ? retryMs : 0,
      blockedNow: false,
      limits: r.limits.map((l, i) => ({
        allowed: l.allowed && i !== matched?.index,
        remaining: l.remaining,
        resetMs: Math.max(0, l.resetMs - elapsed),
        retryAfterMs:
          i === matched?.index ? matched.until - now : l.allowed ? 0 : Math.max(0, l.retryAfterMs - elapsed),
        alerted: false,
      })),
    }
  }
}

/** Refunds, resets and unblocks give units back; everything else only takes them. */
function givesBack(op: StoreOp): boolean {
  if (op.mode === 'reset' || op.mode === 'unblock') return true
  return op.mode === 'adjust' && op.costs.some((c) => c < 0)
}

function sameKeys(a: readonly string[], b: readonly string[]): boolean {
  if (a === b) return true
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

function sameLimit(entry: Entry, op: StoreOp, i: number): boolean {
  if (entry.limits === op.limits) return true
  const a = entry.limits[i]
  const b = op.limits[i]
  if (a === undefined || b === undefined) return false
  return a.kind === b.kind && capacityOf(a) === capacityOf(b) && windowSecondsOf(a) === windowSecondsOf(b)
}

/** A store behind a BlockedKeyCache: known denials are answered without a store call. */
export class CachedStore implements Store {
  constructor(
    readonly inner: Store,
    readonly cache: BlockedKeyCache,
  ) {}

  execute(op: StoreOp): Promise<StoreResult> {
    // A group (compose()) is decided by the store: a cached denial of one part says nothing of
    // the others' results. What it gives back still makes the parts' cached denials stale.
    if (op.linked !== undefined) {
      const parts = [op, ...op.linked]
      if (parts.some(givesBack))
        for (const part of parts) if (part.keys[0]) this.cache.invalidate(part.keys[0])
      return this.inner.execute(op)
    }
    const hit = this.cache.check(op)
    if (hit !== undefined) return Promise.resolve(hit)
    const key = op.keys[0]
    if (key !== undefined && givesBack(op)) {
      this.cache.invalidate(key)
      // Invalidate again once applied: a denial learned meanwhile may predate the refund.
      const done = () => this.cache.invalidateEverywhere(key)
      return this.inner.execute(op).then(
        (result) => {
          done()
          return result
        },
        (error: unknown) => {
          done()
          throw error
        },
      )
    }
    const sentAt = this.cache.now()
    return this.inner.execute(op).then((result) => {
      this.cache.learn(op, result, sentAt)
      return result
    })
  }

  ping(): Promise<void> {
    return this.inner.ping()
  }

  close(): Promise<void> {
    return this.inner.close()
  }
}
