import type { LimitDefinition } from '../core/algorithms/index.js'
import {
  type BlockState,
  blockedForMs,
  blockTtlMs,
  type StrikeState,
  strike,
  strikeTtlMs,
} from '../core/block.js'
import { crossedThreshold } from '../core/threshold.js'
import { MemoryEntries } from './memory-entries.js'
import { type Layout, layoutOf, packedBytes, type Slot } from './memory-layout.js'
import type { LimitResult, StateHint, StoreOp, StoreResult } from './types.js'

/**
 * MemoryStore's decisions on a subject's packed numbers themselves, for policies whose limits all
 * check in place (token buckets, fixed and sliding windows, calendars: Layout.inPlace), with what
 * both of its paths share: the layout and slot of an op, alerts and strikes. MemoryStore
 * (memory.ts) takes the general path — a Step per limit — for the rest (logs, leases, adjustments,
 * groups, resets).
 */
export class InPlaceDecisions extends MemoryEntries {
  /**
   * Decide consume, reserve and peek of an in-place layout on the packed numbers (decideInPlace);
   * false takes the general path for every op (test/memory-in-place.test.ts compares the two).
   */
  protected readonly inPlace: boolean = true
  /** The layout of the last policy seen (one Limiter's ops share one limits array). */
  private lastLimits: readonly LimitDefinition[] | undefined
  private lastLayout: Layout | undefined
  /** decideOne's result, reused. */
  private readonly one: StoreResult = newResult(1)

  protected layoutFor(limits: readonly LimitDefinition[]): Layout {
    if (limits === this.lastLimits) return this.lastLayout!
    const layout = layoutOf(limits)
    this.lastLimits = limits
    this.lastLayout = layout
    return layout
  }

  /** The slot under `key`, expired or not: through `hint` while that holds. */
  protected slotAt(key: string, hint: StateHint | undefined): Slot | undefined {
    if (hint !== undefined && hint.owner === this && hint.generation === this.generation) {
      return hint.slot as Slot | undefined
    }
    const found = this.entries.get(key)
    if (hint !== undefined) {
      hint.owner = this
      hint.generation = this.generation
      hint.slot = found
    }
    return found
  }

  /**
   * consume, reserve or peek of a layout whose limits all check in place (Layout.inPlace): each
   * algorithm reads the subject's numbers, writes what it charges straight into them (keeping the
   * numbers it replaced in the layout's `saved`, put back when another limit denies) and its
   * figures straight into `out` — no state objects, no Steps, no copy. An op that charges nothing
   * (peek, or a blocked subject) checks a copy. The same answers and the same writes as
   * evaluate() then commit() (test/memory-in-place.test.ts holds the two paths together).
   */
  protected decideInPlace(
    op: StoreOp,
    now: number,
    layout: Layout,
    slot: number[] | undefined,
    out: StoreResult,
  ): StoreResult {
    let packed = slot
    if (packed !== undefined && packed[0]! <= now) {
      this.delete(op.stateKey)
      packed = undefined
    }
    const { mode } = op
    const b = op.block
    const block = b ? (this.readHinted(b.key, b.hint, now) as BlockState | undefined) : undefined
    const blockedMs = blockedForMs(block, now)
    const charging = blockedMs === 0 && mode !== 'peek'
    // Where the checks write: the subject's numbers, or new ones for a subject with none (kept
    // only when admitted), or a copy nobody keeps.
    const nums = charging
      ? (packed ?? new Array<number>(layout.length).fill(0))
      : copyInto(layout.scratch, packed ?? layout.zeros)
    const saved = layout.saved
    const checks = layout.checks
    const offsets = layout.offsets
    // In locals: V8 reads a field again after each call it cannot see into.
    const costs = op.costs
    const definitions = op.limits
    const limits = out.limits
    const n = definitions.length
    let admits = true
    /** The key lives until its slowest limit is full again. */
    let longest = 0
    for (let i = 0; i < n; i++) {
      const r = limits[i]!
      r.alerted = false
      // `=== true`: a call's result is not known to be a boolean; this is one comparison.
      if (checks[i]!(nums, offsets[i]!, now, costs[i]!, definitions[i]!, saved, r) === true) {
        if (r.resetMs > longest) longest = r.resetMs
      } else admits = false
    }
    const allowed = admits && blockedMs === 0
    let newBlockMs = 0
    if (allowed) {
      if (charging) this.keepInPlace(op.stateKey, layout, packed, nums, longest, now)
    } else if (charging) {
      if (packed !== undefined) putBack(layout, limits, nums, saved, n)
      if (b && countsAsStrike(layout, limits, n)) newBlockMs = this.recordStrike(b, block, now)
    }
    if (allowed && op.alert && mode !== 'peek') this.markAlerts(op, layout, limits, now)
    return finish(out, now, allowed, blockedMs, newBlockMs)
  }

  /**
   * writeStates for decideInPlace, whose checks wrote the charged numbers already: the key lives
   * until its slowest limit is full again (`longest`), or goes when every limit is full.
   */
  private keepInPlace(
    stateKey: string,
    layout: Layout,
    packed: number[] | undefined,
    nums: number[],
    longest: number,
    now: number,
  ): void {
    if (longest === 0) {
      if (packed !== undefined) this.delete(stateKey)
      return
    }
    nums[0] = now + longest
    if (nums === packed) return
    this.put(stateKey, nums, packedBytes(stateKey, layout.length), undefined, now)
  }

  /**
   * @internal The layout of a policy of one limit that checks in place, for decideOne(); undefined
   * when its decisions take another path (then the Limiter builds ops as for any policy).
   */
  oneLimitLayout(limits: readonly LimitDefinition[]): Layout | undefined {
    if (limits.length !== 1 || this.inPlace !== true) return undefined
    const layout = layoutOf(limits)
    return layout.inPlace === true ? layout : undefined
  }

  /**
   * @internal decideInPlace for a policy of one limit without alerts or blocks (the Limiter's
   * one-limit path, src/limiter-one.ts): consume when `charge`, else peek, with no op built, no
   * loop over limits and no block read. Its result is reused (valid until the store's next op);
   * undefined when the key holds anything but this layout's numbers (then the general path
   * decides). The same answers and the same writes as decideInPlace (test/limiter-one.test.ts).
   */
  decideOne(
    layout: Layout,
    limit: LimitDefinition,
    stateKey: string,
    hint: StateHint,
    cost: number,
    charge: boolean,
  ): StoreResult | undefined {
    const now = this.now()
    const slot = this.slotAt(stateKey, hint)
    let packed: number[] | undefined
    if (slot !== undefined) {
      if (!Array.isArray(slot) || slot.length !== layout.length) return undefined
      packed = slot
      if (packed[0]! <= now) {
        this.delete(stateKey)
        packed = undefined
      }
    }
    // `=== true`: V8 tests a value it cannot prove boolean for every falsy value otherwise.
    const charging = charge === true
    const nums = charging
      ? (packed ?? new Array<number>(layout.length).fill(0))
      : copyInto(layout.scratch, packed ?? layout.zeros)
    const out = this.one
    const r = out.limits[0]!
    r.alerted = false
    // A check writes only what it admits: a denial by the only limit leaves nothing to put back.
    const allowed = layout.checks[0]!(nums, 1, now, cost, limit, layout.saved, r) === true
    if (allowed && charging) this.keepInPlace(stateKey, layout, packed, nums, r.resetMs, now)
    out.now = now
    out.allowed = allowed
    return out
  }

  protected markAlerts(op: StoreOp, layout: Layout, limits: LimitResult[], now: number): void {
    const alert = op.alert!
    for (let i = 0; i < limits.length; i++) {
      const limit = op.limits[i]!
      const algorithm = layout.algorithms[i]!
      const r = limits[i]!
      if (!crossedThreshold(algorithm.capacity(limit), r.remaining, op.costs[i]!, alert.threshold)) continue
      const marker = alert.keys[i]!
      if (this.live(marker, now) !== undefined) continue
      const ttlMs = algorithm.alertMs?.(limit) ?? algorithm.windowSeconds(limit) * 1000
      if (ttlMs > 0) this.insert(marker, [now + ttlMs], packedBytes(marker, 1), now)
      r.alerted = true
    }
  }

  /** Counts a denial toward a block; returns the length of the block it started, or 0. */
  protected recordStrike(
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
}

/** A result for `n` limits, to be filled by a decision. */
export function newResult(n: number): StoreResult {
  // Grown by push, not new Array(n): a packed array, read without a test for holes.
  const limits: LimitResult[] = []
  for (let i = 0; i < n; i++) {
    limits.push({ allowed: false, remaining: 0, resetMs: 0, retryAfterMs: 0, alerted: false })
  }
  return { now: 0, allowed: false, blockedMs: 0, blockedNow: false, limits }
}

/** Copies `from` into `into` (of the same length); answers `into`. */
function copyInto(into: number[], from: readonly number[]): number[] {
  for (let k = 0; k < from.length; k++) into[k] = from[k]!
  return into
}

/** Puts back the numbers the admitting checks of a denied op replaced (`saved`). */
function putBack(
  layout: Layout,
  limits: readonly LimitResult[],
  nums: number[],
  saved: readonly number[],
  n: number,
): void {
  for (let i = 0; i < n; i++) {
    if (!limits[i]!.allowed) continue
    const at = layout.offsets[i]!
    const end = at + layout.widths[i]!
    for (let k = at; k < end; k++) nums[k] = saved[k]!
  }
}

/**
 * Fills in a decision's outcome: a block this op started (`newBlockMs` > 0) is the one reported,
 * else the block the subject was already under (`blockedMs`, 0 for none).
 */
export function finish(
  out: StoreResult,
  now: number,
  allowed: boolean,
  blockedMs: number,
  newBlockMs: number,
): StoreResult {
  out.now = now
  out.allowed = allowed
  out.blockedMs = newBlockMs > 0 ? newBlockMs : blockedMs
  out.blockedNow = newBlockMs > 0
  return out
}

/**
 * A denial counts toward a block when waiting would help and a rate limit denied: not when the
 * cost can never fit (a client error), nor when only calls in flight were at their limit (a
 * client politely waiting for its own streams is not abusive).
 */
export function countsAsStrike(
  layout: Layout,
  steps: readonly { allowed: boolean; retryAfterMs: number }[],
  n: number,
): boolean {
  let rateDenied = false
  for (let i = 0; i < n; i++) {
    const s = steps[i]!
    if (s.retryAfterMs === Number.POSITIVE_INFINITY) return false
    if (!s.allowed && !layout.algorithms[i]!.inFlight) rateDenied = true
  }
  return rateDenied
}
