import {
  type BlockState,
  blockedForMs,
  blockTtlMs,
  type StrikeState,
  strike,
  strikeTtlMs,
} from '../core/block.js'
import { type ConcurrencyState, concurrencyCheck, concurrencyRelease } from '../core/concurrency.js'
import { requirePositiveInteger } from '../core/errors.js'
import {
  type FixedWindowState,
  fixedWindowCheck,
  fixedWindowForce,
  fixedWindowRefund,
} from '../core/fixed-window.js'
import { gcraCheck, gcraForce, gcraRefund } from '../core/gcra.js'
import { type LimitDefinition, windowSecondsOf } from '../core/limits.js'
import { promised } from '../core/promised.js'
import {
  type SlidingLogState,
  slidingLogCheck,
  slidingLogForce,
  slidingLogRefund,
} from '../core/sliding-log.js'
import {
  type SlidingWindowState,
  slidingWindowCheck,
  slidingWindowForce,
  slidingWindowRefund,
} from '../core/sliding-window.js'
import type { Step } from '../core/step.js'
import { crossedThreshold } from '../core/threshold.js'
import type { LimitResult, Store, StoreOp, StoreResult } from './types.js'

export interface MemoryStoreOptions {
  /**
   * Most keys held at once (default 1,000,000). When full, expired keys are swept first; if none,
   * the key closest to expiry among the least recently created is evicted — that subject starts
   * afresh, so size this above the subjects you expect to be active within your longest window.
   */
  maxKeys?: number
  /** How often expired keys are swept in the background (default 10 s); lookups ignore them anyway. */
  sweepIntervalMs?: number
  /** Clock in ms since the epoch; defaults to a monotonic clock anchored at the epoch. */
  now?: () => number
}

interface Entry {
  value: unknown
  expiresAt: number
}

/** The value under a subject's state key: each limit's state, by name. */
interface PackedStates {
  names: readonly string[]
  states: unknown[]
}

/** States listed under `from` names, in the order of `to` names (limits added since start empty). */
function remap(packed: PackedStates, to: readonly string[]): unknown[] {
  return to.map((name) => {
    const j = packed.names.indexOf(name)
    return j < 0 ? undefined : packed.states[j]
  })
}

const SWEEP_BATCH = 10_000
const EVICTION_SAMPLE = 16

const TIME_ORIGIN = performance.timeOrigin
const monotonicNow = () => TIME_ORIGIN + performance.now()

/** The embedded store: state in a Map in this process, each op applied synchronously. */
export class MemoryStore implements Store {
  readonly maxKeys: number
  private readonly entries = new Map<string, Entry>()
  private readonly now: () => number
  private readonly timer: NodeJS.Timeout | undefined
  private sweepCursor: MapIterator<[string, Entry]> | undefined
  private readonly steps: Step<unknown>[] = []
  /** Keys evicted because maxKeys was reached. */
  evictions = 0

  constructor(options: MemoryStoreOptions = {}) {
    this.maxKeys =
      options.maxKeys === undefined
        ? 1_000_000
        : requirePositiveInteger(options.maxKeys, 'MemoryStore maxKeys')
    this.now = options.now ?? monotonicNow
    const interval =
      options.sweepIntervalMs === undefined
        ? 10_000
        : requirePositiveInteger(options.sweepIntervalMs, 'MemoryStore sweepIntervalMs')
    this.timer = setInterval(() => this.sweep(SWEEP_BATCH), interval)
    this.timer.unref()
  }

  get size(): number {
    return this.entries.size
  }

  execute(op: StoreOp): Promise<StoreResult> {
    return promised(() => this.executeSync(op))
  }

  ping(): Promise<void> {
    return Promise.resolve()
  }

  close(): Promise<void> {
    clearInterval(this.timer)
    this.entries.clear()
    return Promise.resolve()
  }

  /** Remaining time to live of a key in ms, or undefined when it does not exist (for tests and inspection). */
  ttlMs(key: string): number | undefined {
    const now = this.now()
    const entry = this.live(key, now)
    return entry === undefined ? undefined : entry.expiresAt - now
  }

  executeSync(op: StoreOp): StoreResult {
    const now = this.now()
    const { mode } = op
    if (mode === 'reset' || mode === 'unblock') {
      const keys = mode === 'reset' ? [op.stateKey, ...(op.alert?.keys ?? [])] : []
      if (op.block) keys.push(op.block.key, op.block.strikesKey)
      for (const key of keys) this.entries.delete(key)
      return this.executeSync({ ...op, mode: 'peek', costs: op.costs.map(() => 0) })
    }

    const n = op.limits.length
    const entry = this.live(op.stateKey, now)
    const packed = entry?.value as PackedStates | undefined
    const states =
      packed === undefined ? undefined : packed.names === op.names ? packed.states : remap(packed, op.names)
    // Scratch space reused across calls: executeSync never runs re-entrantly.
    const steps = this.steps
    let allowed = true
    for (let i = 0; i < n; i++) {
      const s = this.step(op, i, states?.[i], now)
      steps[i] = s
      if (!s.allowed) allowed = false
    }
    if (mode === 'adjust') allowed = true

    const block =
      op.block && mode !== 'adjust' ? (this.read(op.block.key, now) as BlockState | undefined) : undefined
    const blockedMs = blockedForMs(block, now)
    if (blockedMs > 0) allowed = false

    /** > 0 when this denial started a block: its length. */
    let newBlockMs = 0
    if (allowed && mode !== 'peek') {
      // One entry per subject, living until its slowest limit is full again.
      let longest = 0
      const next: unknown[] = packed?.names === op.names ? packed.states : new Array(n)
      for (let i = 0; i < n; i++) {
        const s = steps[i]!
        next[i] = s.resetMs > 0 ? s.state : undefined
        if (s.resetMs > longest) longest = s.resetMs
      }
      if (entry !== undefined && longest > 0) {
        if (packed!.states !== next) entry.value = { names: op.names, states: next }
        entry.expiresAt = now + longest
      } else {
        this.write(op.stateKey, { names: op.names, states: next } satisfies PackedStates, longest, now)
      }
    } else if (!allowed && blockedMs === 0 && op.block && (mode === 'consume' || mode === 'reserve')) {
      if (countsAsStrike(op, steps, n)) newBlockMs = this.recordStrike(op.block, block, now)
    }

    const limits: LimitResult[] = new Array(n)
    for (let i = 0; i < n; i++) {
      const s = steps[i]!
      limits[i] = {
        allowed: s.allowed,
        remaining: s.remaining,
        resetMs: s.resetMs,
        retryAfterMs: s.retryAfterMs,
        alerted: false,
      }
    }
    if (allowed && op.alert && (mode === 'consume' || mode === 'reserve')) this.markAlerts(op, limits, now)
    if (newBlockMs > 0) return { now, allowed, blockedMs: newBlockMs, blockedNow: true, limits }
    return { now, allowed, blockedMs, blockedNow: false, limits }
  }

  private step(op: StoreOp, i: number, state: unknown, now: number): Step<unknown> {
    const limit = op.limits[i]!
    const cost = op.costs[i]!
    if (op.mode === 'adjust') return adjustStep(limit, state, now, cost, op)
    switch (limit.kind) {
      case 'tokenBucket':
        return gcraCheck(state as number | undefined, now, cost, limit)
      case 'fixedWindow':
        return fixedWindowCheck(state as FixedWindowState | undefined, now, cost, limit)
      case 'slidingWindow':
        return slidingWindowCheck(state as SlidingWindowState | undefined, now, cost, limit)
      case 'slidingLog':
        return slidingLogCheck(state as SlidingLogState | undefined, now, cost, op.id, limit)
      case 'concurrency':
        return concurrencyCheck(
          state as ConcurrencyState | undefined,
          now,
          cost,
          op.mode === 'reserve' ? op.id : undefined,
          limit,
        )
    }
  }

  private markAlerts(op: StoreOp, limits: LimitResult[], now: number): void {
    const alert = op.alert!
    for (let i = 0; i < limits.length; i++) {
      const limit = op.limits[i]!
      const r = limits[i]!
      const capacity = limit.kind === 'tokenBucket' ? limit.capacity : limit.limit
      if (!crossedThreshold(capacity, r.remaining, op.costs[i]!, alert.threshold)) continue
      const marker = alert.keys[i]!
      if (this.read(marker, now) !== undefined) continue
      this.write(marker, 1, windowSecondsOf(limit) * 1000, now)
      r.alerted = true
    }
  }

  /** Counts a denial toward a block; returns the length of the block it started, or 0. */
  private recordStrike(
    block: NonNullable<StoreOp['block']>,
    current: BlockState | undefined,
    now: number,
  ): number {
    const strikes = this.read(block.strikesKey, now) as StrikeState | undefined
    const outcome = strike(strikes, current, now, block.params)
    if (outcome.strikes)
      this.write(block.strikesKey, outcome.strikes, strikeTtlMs(outcome.strikes, now, block.params), now)
    else this.entries.delete(block.strikesKey)
    if (!outcome.blockedNow) return 0
    const b = outcome.block!
    this.write(block.key, b, blockTtlMs(b, now, block.params), now)
    return b.until - now
  }

  private read(key: string, now: number): unknown {
    return this.live(key, now)?.value
  }

  /** The entry of a key unless it has expired (then it is deleted). */
  private live(key: string, now: number): Entry | undefined {
    const entry = this.entries.get(key)
    if (entry === undefined) return undefined
    if (entry.expiresAt <= now) {
      this.entries.delete(key)
      return undefined
    }
    return entry
  }

  /** Stores a state until it is full again; a state that is full already is the same as no key. */
  private write(key: string, value: unknown, ttlMs: number, now: number): void {
    if (!(ttlMs > 0)) {
      this.entries.delete(key)
      return
    }
    const entry = this.entries.get(key)
    if (entry !== undefined) {
      entry.value = value
      entry.expiresAt = now + ttlMs
      return
    }
    if (this.entries.size >= this.maxKeys) this.makeRoom(now)
    this.entries.set(key, { value, expiresAt: now + ttlMs })
  }

  private makeRoom(now: number): void {
    this.sweep(1_000, now)
    if (this.entries.size < this.maxKeys) return
    let victim: string | undefined
    let soonest = Number.POSITIVE_INFINITY
    let seen = 0
    for (const [key, entry] of this.entries) {
      if (entry.expiresAt < soonest) {
        soonest = entry.expiresAt
        victim = key
      }
      if (++seen >= EVICTION_SAMPLE) break
    }
    if (victim !== undefined) {
      this.entries.delete(victim)
      this.evictions++
    }
  }

  /** Deletes expired keys, looking at up to `budget` keys from where the last sweep stopped. */
  sweep(budget: number, now = this.now()): void {
    this.sweepCursor ??= this.entries.entries()
    for (let i = 0; i < budget; i++) {
      const next = this.sweepCursor.next()
      if (next.done) {
        this.sweepCursor = undefined
        return
      }
      const [key, entry] = next.value
      if (entry.expiresAt <= now) this.entries.delete(key)
    }
  }
}

/**
 * A denial counts toward a block when waiting would help and a rate limit denied: not when the
 * cost can never fit (a client error), nor when only calls in flight were at their limit (a
 * client politely waiting for its own streams is not abusive).
 */
function countsAsStrike(op: StoreOp, steps: readonly Step<unknown>[], n: number): boolean {
  let rateDenied = false
  for (let i = 0; i < n; i++) {
    const s = steps[i]!
    if (s.retryAfterMs === Number.POSITIVE_INFINITY) return false
    if (!s.allowed && op.limits[i]!.kind !== 'concurrency') rateDenied = true
  }
  return rateDenied
}

function adjustStep(
  limit: LimitDefinition,
  state: unknown,
  now: number,
  delta: number,
  op: StoreOp,
): Step<unknown> {
  const chargedAt = op.chargedAt ?? now
  switch (limit.kind) {
    case 'tokenBucket':
      return delta >= 0
        ? gcraForce(state as number | undefined, now, delta, limit)
        : gcraRefund(state as number | undefined, now, -delta, limit)
    case 'fixedWindow':
      return delta >= 0
        ? fixedWindowForce(state as FixedWindowState | undefined, now, delta, limit)
        : fixedWindowRefund(state as FixedWindowState | undefined, now, -delta, chargedAt, limit)
    case 'slidingWindow':
      return delta >= 0
        ? slidingWindowForce(state as SlidingWindowState | undefined, now, delta, limit)
        : slidingWindowRefund(state as SlidingWindowState | undefined, now, -delta, chargedAt, limit)
    case 'slidingLog':
      return delta >= 0
        ? slidingLogForce(state as SlidingLogState | undefined, now, delta, `${op.id}+`, limit)
        : slidingLogRefund(state as SlidingLogState | undefined, now, -delta, op.id, limit)
    case 'concurrency':
      return op.release
        ? concurrencyRelease(state as ConcurrencyState | undefined, now, op.id, limit)
        : concurrencyCheck(state as ConcurrencyState | undefined, now, 0, undefined, limit)
  }
}
