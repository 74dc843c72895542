import type { z } from 'zod'
import type { Step, StepFigures } from '../step.js'

/** The unit a limit counts. Free-form; these are the ones sluice itself speaks of. */
export type Unit = 'requests' | 'tokens' | 'usd' | 'concurrent' | (string & {})

/** What every limit definition carries: the algorithm that decides it, and the unit it counts. */
export interface LimitBase {
  kind: string
  unit: Unit
}

/** What a check knows of the op besides the state and the cost. */
export interface CheckContext {
  /** The op's id: the name of the log entry or lease it writes. */
  id: string
  /** A reservation: take a lease where the algorithm has leases. */
  hold: boolean
}

/** What an adjustment (settle, cancel, late refund) knows of the reservation it adjusts. */
export interface AdjustContext {
  /** The reservation's op id. */
  id: string
  /** The store time the reservation charged at. */
  chargedAt: number
  /** What the reservation charged this limit. */
  charged: number
  /** Release the reservation's lease. */
  release: boolean
}

/**
 * An algorithm whose state is a fixed handful of numbers: the stores keep it packed with the
 * subject's other such limits under one key (MemoryStore in an array of doubles, Redis in one
 * string of little-endian doubles). Zeros stand for a full limit.
 */
export interface PackedState<S> {
  /** How many numbers. */
  width: number
  /**
   * The state is one number kept as is, 0 standing for none (a token bucket's TAT): a store may
   * read and write it in place of calling read/write (MemoryStore does, sparing two calls).
   */
  plain?: boolean
  read(nums: readonly number[], at: number): S | undefined
  write(nums: number[], at: number, state: S | undefined): void
}

/**
 * How a limit comes back, for the HTTP layer's headers and messages:
 * continuous (a bucket refilling), windowEnd (all at once when its window or period ends),
 * sliding (as old charges leave the window), release (a call in flight ends).
 */
export type Refill = 'continuous' | 'windowEnd' | 'sliding' | 'release'

/** The building blocks of the gateway's configuration schema an algorithm writes its YAML form with. */
export interface ConfigKit {
  z: typeof z
  /** A unit the gateway charges, optional (each algorithm picks its default). */
  unit: z.ZodOptional<z.ZodType<string>>
  positive: z.ZodNumber
  positiveInt: z.ZodNumber
  /** A duration such as "1h" or milliseconds, as a number of milliseconds. */
  duration: z.ZodType<number, unknown>
}

/**
 * Everything sluice knows about one limit algorithm, in one place. Every layer reads it: the
 * limiter (validation, capacity, window), MemoryStore (check, adjust, packed state), the Redis
 * store (its Lua part and the numbers it needs), the outage policies (scale), the HTTP layer
 * (refill, inFlight) and the gateway's configuration (config). A new algorithm is one of these,
 * its math in src/core/, its Lua part in src/store/redis/lua/, and one line in the registry
 * (src/core/algorithms/index.ts); see docs/algorithms.md.
 */
export interface Algorithm<D extends LimitBase, S, C = unknown> {
  kind: D['kind']
  /** Rebuilds a definition through the algorithm's factory: a hand-made object gets the same checks. */
  normalize(definition: unknown): D
  /** The most the limit holds (a bucket's capacity, a window's limit). */
  capacity(d: D): number
  /** Seconds the limit describes: a window, a period, or the time to refill an empty bucket. */
  windowSeconds(d: D): number
  /** How long an alert for crossing the threshold is remembered, in ms (default windowSeconds). */
  alertMs?(d: D): number
  /** The limit with its amount (and refill) divided among `instances`, for the 'local' outage policy. */
  scale(d: D, instances: number): D
  refill: Refill
  /** Counts calls in flight: settles charge it nothing, its denials are not strikes, it holds leases. */
  inFlight: boolean
  /** Its state names what an op wrote (log entries, leases): every op of its policy carries its id. */
  needsOpId: boolean
  /** What charging `cost` now would do (a denied step keeps the old state). */
  check(state: S | undefined, now: number, cost: number, d: D, ctx: CheckContext): Step<S>
  /** Charges (delta > 0, even into debt) or refunds (delta < 0) unconditionally; may release a lease. */
  adjust(state: S | undefined, now: number, delta: number, d: D, ctx: AdjustContext): Step<S>
  /**
   * check() on the packed numbers themselves, for an algorithm with `packed` state (MemoryStore's
   * fast path: no state object, no Step): reads the state at `nums[at]…` (zeros: none); when it
   * admits, writes the state the charge leaves in the same places (zeros when the limit is full
   * again: resetMs 0, as the general path stores no state then) and the numbers it replaced to
   * the same places of `saved`, for the store to put back when another limit denies. A denial
   * writes no numbers. The step's figures go to `out`; returns whether it admits. Must give
   * exactly check()'s answers and states (test/memory-in-place.test.ts).
   */
  checkPacked?(
    nums: number[],
    at: number,
    now: number,
    cost: number,
    d: D,
    saved: number[],
    out: StepFigures,
  ): boolean
  /** Numbers kept under the subject's state key; undefined for state under its own key (logs, leases). */
  packed: PackedState<S> | undefined
  /**
   * The Redis store's part: `file`, a .lua file in src/store/redis/lua/ that returns the
   * algorithm's table (see the top of apply.lua), and the numbers it gets per limit.
   */
  lua: { file: string; params(d: D): number[] }
  /** Its form in sluice.yaml (`kind` is added by the registry) and the definition it makes. */
  config: { schema(kit: ConfigKit): z.ZodType<C, unknown>; toLimit(config: C): D }
  /**
   * For the store contract suite: a limit admitting `n` units and none back within a test, or
   * null when the generic per-kind tests do not apply (their own tests cover it).
   */
  sample: ((n: number) => D) | null
}
