import type { AdjustContext, CheckContext } from '../core/algorithms/types.js'
import { type BlockState, blockedForMs } from '../core/block.js'
import { requirePositiveInteger } from '../core/errors.js'
import { promised } from '../core/promised.js'
import type { Step } from '../core/step.js'
import { monotonicNow } from './memory-clock.js'
import { SWEEP_BATCH } from './memory-entries.js'
import { countsAsStrike, finish, InPlaceDecisions, newResult } from './memory-in-place.js'
import { expiryOf, extraBytes, type Layout, Mixed, packedBytes } from './memory-layout.js'
import type { Store, StoreOp, StoreResult } from './types.js'

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

/**
 * The embedded store: state in a Map in this process, each op applied synchronously, bounded by
 * an estimate of the heap it takes (see memory-layout.ts).
 */
export class MemoryStore extends InPlaceDecisions implements Store {
  private readonly timer: NodeJS.Timeout | undefined
  private readonly evaluation = newEvaluation()
  /** executeShared's results, by number of limits. */
  private readonly shared: StoreResult[] = []
  private readonly checkContext: CheckContext = { id: '', hold: false }
  private readonly adjustContext: AdjustContext = { id: '', chargedAt: 0, charged: 0, release: false }
  constructor(options: MemoryStoreOptions = {}) {
    super(
      options.maxBytes === undefined
        ? DEFAULT_MAX_BYTES
        : requirePositiveInteger(options.maxBytes, 'MemoryStore maxBytes'),
      options.maxKeys === undefined
        ? Number.POSITIVE_INFINITY
        : requirePositiveInteger(options.maxKeys, 'MemoryStore maxKeys'),
      options.now ?? monotonicNow,
    )
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
    this.generation++
    this.accounted = 0
    return Promise.resolve()
  }

  /** Remaining time to live of a key in ms, or undefined when it does not exist (for tests and inspection). */
  ttlMs(key: string): number | undefined {
    const now = this.now()
    const slot = this.live(key, now)
    return slot === undefined ? undefined : expiryOf(slot) - now
  }

  executeSync(op: StoreOp): StoreResult {
    const now = this.now()
    if (op.linked !== undefined && op.linked.length > 0) return this.executeGroup(op, now)
    return this.executeOne(op, now, newResult(op.limits.length))
  }

  /**
   * @internal executeSync into a result this store reuses: valid until the store's next op, for a
   * caller that reads it at once (the Limiter turning it into a decision). Spares an allocation
   * per limit and per call on the hot path.
   */
  executeShared(op: StoreOp): StoreResult {
    const now = this.now()
    if (op.linked !== undefined && op.linked.length > 0) return this.executeGroup(op, now)
    const n = op.limits.length
    let shared = this.shared[n]
    if (shared === undefined) {
      shared = newResult(n)
      this.shared[n] = shared
    }
    return this.executeOne(op, now, shared)
  }

  /** One op without linked parts, its result written into `out`. */
  private executeOne(op: StoreOp, now: number, out: StoreResult): StoreResult {
    const { mode } = op
    if (mode === 'reset' || mode === 'unblock') return this.forget(op, now, out)
    const layout = this.layoutFor(op.limits)
    // `=== true`: V8 tests a field it cannot prove boolean for every falsy value otherwise.
    if (layout.inPlace === true && mode !== 'adjust' && this.inPlace === true) {
      const slot = this.slotAt(op.stateKey, op.stateHint)
      // Anything but this layout's numbers under the key (a hand-made op) takes the general path.
      if (slot === undefined || (Array.isArray(slot) && slot.length === layout.length)) {
        return this.decideInPlace(op, now, layout, slot, out)
      }
    }
    // Scratch space reused across calls: executeSync never runs re-entrantly. The steps' array is
    // new each call: a fresh (young) array takes the fresh steps without a write barrier each,
    // which a reused (old) one paid (~50 instructions a limit).
    const ev = this.evaluation
    const steps = new Array<Step<unknown>>(op.limits.length)
    this.evaluate(op, now, ev, steps)
    const allowed = mode === 'adjust' || (ev.allowed && ev.blockedMs === 0)
    return this.commit(op, now, ev, steps, allowed, out)
  }

  /** Decides an op and its linked parts together: all admitted and charged, or none charged. */
  private executeGroup(op: StoreOp, now: number): StoreResult {
    const parts = [op, ...op.linked!]
    if (op.mode === 'reset' || op.mode === 'unblock') {
      const results = parts.map((part) => this.forget(part, now, newResult(part.limits.length)))
      return { ...results[0]!, linked: results.slice(1) }
    }
    const evaluations = parts.map((part) => {
      const ev = newEvaluation()
      const steps: Step<unknown>[] = []
      this.evaluate(part, now, ev, steps)
      return { ev, steps }
    })
    const allowed = op.mode === 'adjust' || evaluations.every(({ ev }) => ev.allowed && ev.blockedMs === 0)
    const results = parts.map((part, k) =>
      this.commit(
        part,
        now,
        evaluations[k]!.ev,
        evaluations[k]!.steps,
        allowed,
        newResult(part.limits.length),
      ),
    )
    return { ...results[0]!, linked: results.slice(1) }
  }

  /** reset and unblock: forget what they forget, then say what a peek would. */
  private forget(op: StoreOp, now: number, out: StoreResult): StoreResult {
    if (op.mode === 'reset') {
      this.delete(op.stateKey)
      for (const key of op.alert?.keys ?? []) this.delete(key)
    }
    if (op.block) {
      this.delete(op.block.key)
      this.delete(op.block.strikesKey)
    }
    const peek: StoreOp = { ...op, mode: 'peek', costs: op.costs.map(() => 0) }
    const ev = this.evaluation
    const steps = new Array<Step<unknown>>(op.limits.length)
    this.evaluate(peek, now, ev, steps)
    return this.commit(peek, now, ev, steps, ev.allowed && ev.blockedMs === 0, out)
  }

  /** Runs each limit's algorithm on the subject's state (changing nothing): fills `steps` and `ev`. */
  private evaluate(op: StoreOp, now: number, ev: Evaluation, steps: Step<unknown>[]): void {
    const n = op.limits.length
    const layout = this.layoutFor(op.limits)
    const found = this.slotAt(op.stateKey, op.stateHint)
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
    const adjusting = op.mode === 'adjust'
    const check = this.checkContext
    const adjust = this.adjustContext
    if (adjusting) {
      adjust.id = op.id
      adjust.chargedAt = op.chargedAt ?? now
      adjust.release = op.release === true
    } else {
      check.id = op.id
      check.hold = op.mode === 'reserve'
    }
    let allowed = true
    for (let i = 0; i < n; i++) {
      const at = layout.offsets[i]!
      let state: unknown
      if (at < 0) state = mixed?.extra[i]
      else if (packed !== undefined) {
        if (layout.plain[i]) {
          const value = packed[at]!
          state = value === 0 ? undefined : value
        } else state = layout.codecs[i]!.read(packed, at)
      }
      const algorithm = layout.algorithms[i]!
      let s: Step<unknown>
      if (adjusting) {
        adjust.charged = op.charged?.[i] ?? 0
        s = algorithm.adjust(state, now, op.costs[i]!, op.limits[i]!, adjust)
      } else s = algorithm.check(state, now, op.costs[i]!, op.limits[i]!, check)
      steps[i] = s
      if (!s.allowed) allowed = false
    }
    const b = op.block
    const block =
      b && !adjusting ? (this.readHinted(b.key, b.hint, now) as BlockState | undefined) : undefined
    ev.layout = layout
    ev.packed = packed
    ev.mixed = mixed
    ev.block = block
    ev.blockedMs = blockedForMs(block, now)
    ev.allowed = allowed || adjusting
  }

  /**
   * Writes what an admitted op charged (`allowed`: the decision, of its group when linked), or
   * counts the denial toward a block; then reports its limits.
   */
  private commit(
    op: StoreOp,
    now: number,
    ev: Evaluation,
    steps: readonly Step<unknown>[],
    allowed: boolean,
    out: StoreResult,
  ): StoreResult {
    const { mode } = op
    const n = op.limits.length
    const blockedMs = ev.blockedMs
    /** > 0 when this denial started a block: its length. */
    let newBlockMs = 0
    if (allowed && mode !== 'peek') {
      this.writeStates(op, ev.layout!, ev.packed, ev.mixed, steps, now)
    } else if (!allowed && blockedMs === 0 && op.block && (mode === 'consume' || mode === 'reserve')) {
      if (countsAsStrike(ev.layout!, steps, n)) newBlockMs = this.recordStrike(op.block, ev.block, now)
    }

    const limits = out.limits
    for (let i = 0; i < n; i++) {
      const s = steps[i]!
      const r = limits[i]!
      r.allowed = s.allowed
      r.remaining = s.remaining
      r.resetMs = s.resetMs
      r.retryAfterMs = s.retryAfterMs
      r.alerted = false
    }
    if (allowed && op.alert && (mode === 'consume' || mode === 'reserve')) {
      this.markAlerts(op, ev.layout!, limits, now)
    }
    return finish(out, now, allowed, blockedMs, newBlockMs)
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
      if (layout.plain[i]) nums[at] = state === undefined ? 0 : (state as number)
      else layout.codecs[i]!.write(nums, at, state)
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
}

/** What evaluate() learnt of an op's subject, for commit(). */
interface Evaluation {
  layout: Layout | undefined
  packed: number[] | undefined
  mixed: Mixed | undefined
  block: BlockState | undefined
  blockedMs: number
  /** Every limit admits (always true for an adjustment); a block is apart (blockedMs). */
  allowed: boolean
}

function newEvaluation(): Evaluation {
  return {
    layout: undefined,
    packed: undefined,
    mixed: undefined,
    block: undefined,
    blockedMs: 0,
    allowed: true,
  }
}
