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
import type { LimitResult, StoreOp, StoreResult } from './types.js'

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

  protected layoutFor(limits: readonly LimitDefinition[]): Layout {
    if (limits === this.lastLimits) return this.lastLayout!
    const layout = layoutOf(limits)
    this.lastLimits = limits
    this.lastLayout = layout
    return layout
  }

  /** The slot under the op's state key, expired or not: through its hint while that holds. */
  protected slotOf(op: StoreOp): Slot | undefined {
    const hint = op.stateHint
    if (hint !== undefined && hint.owner === this && hint.generation === this.generation) {
      return hint.slot as Slot | undefined
    }
    const found = this.entries.get(op.stateKey)
    if (hint !== undefined) {
      hint.owner = this
      hint.generation = this.generation
      hint.slot = found
    }
    return found
  }

  /**
   * consume, reserve or peek of a layout whose limits all check in place (Layout.inPlace): each
   * algorithm reads the subject's numbers and writes what it would charge into the layout's
   * scratch array and its figures straight into `out` — no state objects, no Steps — and an
   * admitted charge is copied into the subject's numbers. The same answers and the same writes as
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
    const nums = packed ?? layout.zeros
    const next = layout.next
    const checks = layout.checks
    const offsets = layout.offsets
    const limits = out.limits
    const n = op.limits.length
    let admits = true
    for (let i = 0; i < n; i++) {
      const r = limits[i]!
      r.alerted = false
      if (!checks[i]!(nums, offsets[i]!, now, op.costs[i]!, op.limits[i]!, next, r)) admits = false
    }
    const { mode } = op
    const b = op.block
    const block = b ? (this.readHinted(b.key, b.hint, now) as BlockState | undefined) : undefined
    const blockedMs = blockedForMs(block, now)
    const allowed = admits && blockedMs === 0
    let newBlockMs = 0
    if (allowed) {
      if (mode !== 'peek') this.writeInPlace(op, layout, packed, limits, now)
    } else if (blockedMs === 0 && b && mode !== 'peek') {
      if (countsAsStrike(layout, limits, n)) newBlockMs = this.recordStrike(b, block, now)
    }
    if (allowed && op.alert && mode !== 'peek') this.markAlerts(op, layout, limits, now)
    return finish(out, now, allowed, blockedMs, newBlockMs)
  }

  /**
   * writeStates for decideInPlace: each limit's charged numbers (the layout's scratch), or zeros
   * for a limit full again; the key lives until its slowest limit is full.
   */
  private writeInPlace(
    op: StoreOp,
    layout: Layout,
    packed: number[] | undefined,
    limits: readonly LimitResult[],
    now: number,
  ): void {
    const next = layout.next
    const n = op.limits.length
    let longest = 0
    let nums = packed
    for (let i = 0; i < n; i++) {
      const resetMs = limits[i]!.resetMs
      const at = layout.offsets[i]!
      const end = at + layout.widths[i]!
      if (resetMs > 0) {
        if (resetMs > longest) longest = resetMs
        nums ??= new Array<number>(layout.length).fill(0)
        for (let k = at; k < end; k++) nums[k] = next[k]!
      } else if (nums !== undefined) {
        for (let k = at; k < end; k++) nums[k] = 0
      }
    }
    if (nums === undefined) return
    if (longest === 0) {
      if (packed !== undefined) this.delete(op.stateKey)
      return
    }
    nums[0] = now + longest
    if (nums === packed) return
    const bytes = packedBytes(op.stateKey, nums.length)
    this.put(op.stateKey, nums, bytes, packed !== undefined ? bytes : undefined, now)
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
