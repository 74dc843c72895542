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
import { type LimitDefinition, type TokenBucketLimit, windowSecondsOf } from '../core/limits.js'
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
import {
  Boxed,
  boxBytes,
  expiryOf,
  extraBytes,
  type Layout,
  layoutOf,
  Mixed,
  packedBytes,
  type Slot,
  valueBytes,
} from './memory-layout.js'
import type { LimitResult, Store, StoreOp, StoreResult } from './types.js'

export interface MemoryStoreOptions {
  /**
   * Most heap the store's entries may take, in bytes (default 256 MiB), by the store's own estimate
   * (`bytes`). When an entry would go past it, expired entries are swept first; if that is not
   * enough, entries closest to expiry among the least recently created are evicted — those
   * subjects start afresh. A subject of a gateway tier takes about 200 bytes (docs/performance.md).
   */
  maxBytes?: number
  /** Most keys held at once (default: no limit other than maxBytes); reaching it evicts the same way. */
  maxKeys?: number
  /** How often expired keys are swept in the background (default 10 s); lookups ignore them anyway. */
  sweepIntervalMs?: number
  /** Clock in ms since the epoch; defaults to a monotonic clock anchored at the epoch. */
  now?: () => number
}

export const DEFAULT_MAX_BYTES = 256 * 1024 * 1024

const SWEEP_BATCH = 10_000
const EVICTION_SAMPLE = 16

const TIME_ORIGIN = performance.timeOrigin
const monotonicNow = () => TIME_ORIGIN + performance.now()

/**
 * A string built by concatenation is a tree of its parts until it is flattened; kept as a Map key
 * it would hold every part (over 100 bytes a subject). Reading a character flattens it in place.
 */
function flat(key: string): string {
  key.charCodeAt(0)
  return key
}

/**
 * The embedded store: state in a Map in this process, each op applied synchronously, bounded by
 * an estimate of the heap it takes (see memory-layout.ts).
 */
export class MemoryStore implements Store {
  readonly maxBytes: number
  readonly maxKeys: number
  private readonly entries = new Map<string, Slot>()
  private readonly now: () => number
  private readonly timer: NodeJS.Timeout | undefined
  private sweepCursor: MapIterator<[string, Slot]> | undefined
  private readonly steps: Step<unknown>[] = []
  private accounted = 0
  /** The layout of the last policy seen (one Limiter's ops share one limits array). */
  private lastLimits: readonly LimitDefinition[] | undefined
  private lastLayout: Layout | undefined
  /** Keys evicted because maxBytes or maxKeys was reached. */
  evictions = 0

  constructor(options: MemoryStoreOptions = {}) {
    this.maxBytes =
      options.maxBytes === undefined
        ? DEFAULT_MAX_BYTES
        : requirePositiveInteger(options.maxBytes, 'MemoryStore maxBytes')
    this.maxKeys =
      options.maxKeys === undefined
        ? Number.POSITIVE_INFINITY
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

  /** The heap the entries take, by the store's estimate (kept at or under maxBytes). */
  get bytes(): number {
    return this.accounted
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
    this.accounted = 0
    return Promise.resolve()
  }

  /** @internal Each live entry (memory-snapshot.ts writes them to a file). */
  forEachEntry(visit: (key: string, slot: Slot) => void): void {
    const now = this.now()
    for (const [key, slot] of this.entries) if (expiryOf(slot) > now) visit(key, slot)
  }

  /** @internal Puts back an entry read from a snapshot (memory-snapshot.ts), within the bounds. */
  restoreEntry(key: string, slot: Slot, bytes: number): void {
    this.delete(key)
    this.insert(key, slot, bytes, this.now())
  }

  /** Remaining time to live of a key in ms, or undefined when it does not exist (for tests and inspection). */
  ttlMs(key: string): number | undefined {
    const now = this.now()
    const slot = this.live(key, now)
    return slot === undefined ? undefined : expiryOf(slot) - now
  }

  executeSync(op: StoreOp): StoreResult {
    const now = this.now()
    const { mode } = op
    const n = op.limits.length
    let layout = this.lastLayout!
    if (op.limits !== this.lastLimits) {
      layout = layoutOf(op.limits)
      this.lastLimits = op.limits
      this.lastLayout = layout
    }
    if (mode === 'reset' || mode === 'unblock') {
      if (mode === 'reset') {
        this.delete(op.stateKey)
        for (const key of op.alert?.keys ?? []) this.delete(key)
      }
      if (op.block) {
        this.delete(op.block.key)
        this.delete(op.block.strikesKey)
      }
      return this.executeSync({ ...op, mode: 'peek', costs: op.costs.map(() => 0) })
    }

    const found = this.entries.get(op.stateKey)
    let packed: number[] | undefined
    let mixed: Mixed | undefined
    if (found !== undefined) {
      if (Array.isArray(found)) packed = found
      else if (found instanceof Mixed) {
        mixed = found
        packed = found.nums
      }
      // Another layout under the same key (a hand-made op) reads as a fresh state.
      if (packed === undefined || packed.length !== layout.length) {
        packed = mixed = undefined
      } else if (packed[0]! <= now) {
        this.delete(op.stateKey)
        packed = mixed = undefined
      }
    }
    // Scratch space reused across calls: executeSync never runs re-entrantly.
    const steps = this.steps
    let allowed = true
    for (let i = 0; i < n; i++) {
      const at = layout.offsets[i]!
      const s =
        at < 0
          ? this.step(op, i, mixed?.extra[i], now)
          : packed === undefined
            ? this.step(op, i, undefined, now)
            : op.limits[i]!.kind === 'tokenBucket' && op.mode !== 'adjust'
              ? this.bucket(op, i, packed[at]!, now)
              : this.step(op, i, layout.codecs[i]!.read(packed, at), now)
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
      this.writeStates(op, layout, packed, mixed, steps, now)
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

  /**
   * Stores what the steps charged under the state key, living until its slowest limit is full
   * again: packed numbers, with the logs and leases beside them while there are any.
   */
  private writeStates(
    op: StoreOp,
    layout: Layout,
    packed: number[] | undefined,
    mixed: Mixed | undefined,
    steps: readonly Step<unknown>[],
    now: number,
  ): void {
    const n = op.limits.length
    let longest = 0
    let nums = packed
    let extra = mixed?.extra
    let extras = 0
    for (let i = 0; i < n; i++) {
      const s = steps[i]!
      const at = layout.offsets[i]!
      const state = s.resetMs > 0 ? s.state : undefined
      if (state !== undefined && s.resetMs > longest) longest = s.resetMs
      if (at < 0) {
        if (state !== undefined) {
          extra ??= new Array(n)
          extras++
        }
        if (extra !== undefined) extra[i] = state
        continue
      }
      if (nums === undefined) {
        if (state === undefined) continue
        nums = new Array<number>(layout.length).fill(0)
      }
      layout.codecs[i]!.write(nums, at, state)
    }
    if (longest === 0) {
      if (packed !== undefined) this.delete(op.stateKey)
      return
    }
    nums ??= new Array<number>(layout.length).fill(0)
    nums[0] = now + longest
    if (extras === 0 && nums === packed && mixed === undefined) return
    const base = mixed?.baseBytes ?? packedBytes(op.stateKey, nums.length)
    // What the key holds now: this state (packed or mixed), or nothing.
    const held = mixed?.bytes ?? (packed !== undefined ? base : undefined)
    if (extras === 0) {
      this.put(op.stateKey, nums, base, held, now)
      return
    }
    const bytes = base + extraBytes(extra!)
    if (mixed !== undefined && mixed.nums === nums) {
      this.grow(op.stateKey, bytes - mixed.bytes, now)
      mixed.bytes = bytes
      return
    }
    this.put(op.stateKey, new Mixed(nums, extra!, base, bytes), bytes, held, now)
  }

  /**
   * Puts `slot` under `key`, which holds `held` bytes now (a state of this layout) or nothing of
   * this layout (undefined: whatever else it holds is deleted first).
   */
  private put(key: string, slot: Slot, bytes: number, held: number | undefined, now: number): void {
    if (held === undefined) {
      this.delete(key)
      this.insert(key, slot, bytes, now)
      return
    }
    this.grow(key, bytes - held, now)
    this.entries.set(key, slot)
  }

  /** Accounts for `key` taking `delta` more bytes, making room elsewhere when that goes past maxBytes. */
  private grow(key: string, delta: number, now: number): void {
    if (delta > 0 && this.accounted + delta > this.maxBytes) this.makeRoom(delta, now, key)
    this.accounted += delta
  }

  private bucket(op: StoreOp, i: number, tat: number, now: number): Step<unknown> {
    return gcraCheck(tat === 0 ? undefined : tat, now, op.costs[i]!, op.limits[i] as TokenBucketLimit)
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
      if (this.live(marker, now) !== undefined) continue
      const ttlMs = windowSecondsOf(limit) * 1000
      if (ttlMs > 0) this.insert(marker, [now + ttlMs], packedBytes(marker, 1), now)
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
    if (outcome.strikes) {
      this.writeBoxed(block.strikesKey, outcome.strikes, strikeTtlMs(outcome.strikes, now, block.params), now)
    } else this.delete(block.strikesKey)
    if (!outcome.blockedNow) return 0
    const b = outcome.block!
    this.writeBoxed(block.key, b, blockTtlMs(b, now, block.params), now)
    return b.until - now
  }

  /** The boxed value of a key (a log, leases, a block or strikes), unless expired. */
  private read(key: string, now: number): unknown {
    const slot = this.live(key, now)
    return slot instanceof Boxed ? slot.value : undefined
  }

  /** The slot of a key unless it has expired (then it is deleted). */
  private live(key: string, now: number): Slot | undefined {
    const slot = this.entries.get(key)
    if (slot === undefined) return undefined
    if (expiryOf(slot) <= now) {
      this.delete(key)
      return undefined
    }
    return slot
  }

  /** Stores a value until it is full again; a state that is full already is the same as no key. */
  private writeBoxed(key: string, value: unknown, ttlMs: number, now: number): void {
    if (!(ttlMs > 0) || value === undefined) {
      this.delete(key)
      return
    }
    const bytes = valueBytes(value)
    const slot = this.entries.get(key)
    if (slot instanceof Boxed) {
      this.accounted += bytes - slot.valueBytes
      slot.value = value
      slot.expiresAt = now + ttlMs
      slot.valueBytes = bytes
      return
    }
    if (slot !== undefined) this.delete(key)
    const box = boxBytes(key)
    this.insert(key, new Boxed(value, now + ttlMs, box, bytes), box + bytes, now)
  }

  /** Adds a key that is not there, first making room under maxBytes and maxKeys. */
  private insert(key: string, slot: Slot, bytes: number, now: number): void {
    if (this.entries.size >= this.maxKeys || this.accounted + bytes > this.maxBytes) {
      this.makeRoom(bytes, now)
    }
    this.entries.set(flat(key), slot)
    this.accounted += bytes
  }

  private delete(key: string): void {
    const slot = this.entries.get(key)
    if (slot === undefined) return
    this.entries.delete(key)
    this.accounted -= slotBytes(key, slot)
  }

  /**
   * Sweeps, then evicts, until `bytes` more fit under maxBytes and (unless `keep` is growing in
   * place) a key more under maxKeys. `keep` itself is never evicted.
   */
  private makeRoom(bytes: number, now: number, keep?: string): void {
    const keys = keep === undefined ? 0 : 1
    const full = () => this.entries.size + 1 - keys > this.maxKeys || this.accounted + bytes > this.maxBytes
    this.sweep(1_000, now)
    while (full() && this.entries.size > keys) {
      let victim: string | undefined
      let soonest = Number.POSITIVE_INFINITY
      let seen = 0
      for (const [key, slot] of this.entries) {
        const expiry = expiryOf(slot)
        if (expiry < soonest && key !== keep) {
          soonest = expiry
          victim = key
        }
        if (++seen >= EVICTION_SAMPLE) break
      }
      this.delete(victim!)
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
      const [key, slot] = next.value
      if (expiryOf(slot) <= now) this.delete(key)
    }
  }
}

function slotBytes(key: string, slot: Slot): number {
  if (slot instanceof Boxed) return slot.boxBytes + slot.valueBytes
  if (slot instanceof Mixed) return slot.bytes
  return packedBytes(key, slot.length)
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
