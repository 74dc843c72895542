import type { LimitDefinition } from '../core/algorithms/index.js'
import type { BlockParams } from '../core/block.js'

/**
 * consume: check every limit and charge all or nothing.
 * reserve: the same, and take a concurrency lease named by the op id.
 * adjust:  charge (positive) or refund (negative) each limit unconditionally; may release the lease.
 * peek:    what consume would say, changing nothing.
 * reset:   forget the subject entirely. unblock: lift its block and strikes.
 */
export type OpMode = 'consume' | 'reserve' | 'adjust' | 'peek' | 'reset' | 'unblock'

export interface StoreOp {
  mode: OpMode
  /** Unique per op: the lease id and the log entry id of what this op charges. */
  id: string
  /**
   * The key holding the state of the subject's limits, named by `names` inside it (a store may keep
   * sliding logs and concurrency leases under their own keys instead). Its TTL is the longest time
   * to full of what it holds.
   */
  stateKey: string
  /** One key per limit, which also names the limit across ops; all keys of one op share a hash tag. */
  keys: readonly string[]
  /** The limits' names, in order (the same array for every op of one policy). */
  names: readonly string[]
  limits: readonly LimitDefinition[]
  /** Per limit: the cost to check (consume, reserve, peek) or the signed change (adjust). */
  costs: readonly number[]
  /** adjust: what the reservation charged per limit, and the store time it charged at. */
  charged?: readonly number[]
  chargedAt?: number
  /** adjust: release the concurrency lease `id`. */
  release?: boolean
  /**
   * adjust: the reservation was decided by this outage policy (its StoreResult.fallback), not by
   * the store. A GuardedStore settles it where it was charged — locally, or nowhere for 'open' —
   * and never sends it to the store.
   */
  fallback?: 'open' | 'local'
  /** Report a limit whose usage this charge moves across `threshold` (0..1), once per window. */
  alert?: { threshold: number; keys: readonly string[] }
  /** Count denials and block repeat offenders. */
  block?: { params: BlockParams; key: string; strikesKey: string; hint?: StateHint }
  /**
   * consume / reserve: decide only when this queue holds no ticket — a queue with requests
   * waiting (src/waiting.ts) — and otherwise answer `waiting` without deciding. Honoured by
   * RedisStore; a MemoryStore's queues decide their ops themselves (memory-queue.ts). Always the
   * queue of the op's own subject: `<base>!queue` beside the state key `<base>#<layout>` (on one
   * Redis the script finds the queue by that name, lua/busy.lua).
   */
  guard?: string
  /**
   * Ops of other subjects decided together with this one, all or nothing (compose()): every part
   * is checked, and all are charged only when every part admits (a denial by one charges none).
   * Each has this op's mode and id. On Redis Cluster every part's keys must be in this op's slot.
   */
  linked?: readonly StoreOp[]
  /** @internal Where a MemoryStore last found `stateKey`'s slot (the Limiter keeps one per subject). */
  stateHint?: StateHint
}

/**
 * @internal A MemoryStore's memo of a state key's slot, valid while the store's entries have
 * neither gained, lost nor replaced a key since (its generation): one Map lookup less per call.
 */
export interface StateHint {
  owner: object | undefined
  generation: number
  slot: unknown
}

export interface LimitResult {
  allowed: boolean
  remaining: number
  resetMs: number
  retryAfterMs: number
  /** This charge crossed the alert threshold and no alert was sent for this window yet. */
  alerted: boolean
}

export interface StoreResult {
  /** The store's clock at the time of the op (ms since the epoch). */
  now: number
  allowed: boolean
  /** > 0 when the subject is blocked: milliseconds until the block ends. */
  blockedMs: number
  /** This denial started a block. */
  blockedNow: boolean
  limits: LimitResult[]
  /**
   * Set when the store could not answer and the outage policy did: 'open' let the call through
   * unchecked; 'local' decided in this process against its share of each limit.
   */
  fallback?: 'open' | 'local'
  /** The op's guard key existed: others wait, the op was not decided (nothing charged). */
  waiting?: boolean
  /**
   * The results of the op's linked parts, in order. `allowed` is the whole group's in each; each
   * part's own limits say which of them refused.
   */
  linked?: StoreResult[]
}

export interface Store {
  execute(op: StoreOp): Promise<StoreResult>
  /** Resolves when the store answers; rejects otherwise. */
  ping(): Promise<void>
  close(): Promise<void>
}
