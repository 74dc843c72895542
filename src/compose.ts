import { decideComposedWaiting } from './compose-wait.js'
import { describe, SluiceInputError } from './core/errors.js'
import { isInFlight } from './core/limits.js'
import { promised } from './core/promised.js'
import type { Costs, Decision, Limiter } from './limiter.js'
import { nextOpId } from './op-id.js'
import type { OpMode, StoreOp, StoreResult } from './store/types.js'
import { resolveWait, type WaitOptions } from './waiting.js'

/** One level of a composed decision: a policy and the subject it counts (a key, a team, a user). */
export interface Level {
  limiter: Limiter
  subject: string
  /**
   * false: a refusal by this level never waits (with `maxWaitMs`), it is answered at once — for
   * a capacity the caller would rather try elsewhere first (the gateway's deployments).
   */
  queue?: false
}

export interface ComposeOptions {
  /**
   * Puts every level's keys in this Redis Cluster hash slot (e.g. `team:research`), as one atomic
   * step needs. The levels' keys then differ from the ones they have when decided alone (or with
   * another tag): decide a subject always with the same tag. Not needed on a single Redis or in
   * memory. Trade-off: every key of the team lives on one cluster node (docs/algorithms.md).
   */
  hashTag?: string
}

/** What a composed decision says: the whole (all or nothing) and each level's own decision. */
export interface ComposedDecision {
  allowed: boolean
  /** 0 when allowed; the longest wait of the levels that refused; Infinity when one never can pass. */
  retryAfterMs: number
  /** The first level that refused (its index in the levels), or undefined. */
  deniedLevel: number | undefined
  /** The limit of that level that refused, or "block". */
  deniedBy: string | undefined
  blocked: boolean
  verified: boolean
  fallback: 'open' | 'local' | undefined
  /** One decision per level, in order: its limits as they are after this decision. */
  levels: Decision[]
  now: number
  /** Set when the call took a place in a queue (consume/reserve with maxWaitMs): how long it waited. */
  waitedMs?: number
}

const HASH_TAG = /^[^{}\s]{1,200}$/

/**
 * Several subjects' limits decided in one atomic step, all or nothing: a request checked against
 * its key's, its team's and its user's limits. A refusal by any level charges no level; a
 * reservation is settled (or cancelled) on every level at once. Every level's limiter must use
 * the same store; each subject may appear once.
 */
export function compose(levels: readonly Level[], options: ComposeOptions = {}): Composite {
  return new Composite(levels, options)
}

export class Composite {
  readonly levels: readonly Level[]
  readonly hashTag: string | undefined

  constructor(levels: readonly Level[], options: ComposeOptions = {}) {
    if (!Array.isArray(levels) || levels.length === 0) {
      throw new SluiceInputError(`compose() needs at least one level, got ${describe(levels)}`)
    }
    const store = levels[0]?.limiter?.store
    const seen = new Set<string>()
    levels.forEach((level, i) => {
      if (typeof level?.limiter?.consume !== 'function') {
        throw new SluiceInputError(
          `compose() levels[${i}].limiter must be a Limiter, got ${describe(level?.limiter)}`,
        )
      }
      if (typeof level.subject !== 'string' || level.subject === '') {
        throw new SluiceInputError(
          `compose() levels[${i}].subject must be a non-empty string, got ${describe(level.subject)}`,
        )
      }
      if (level.limiter.store !== store) {
        throw new SluiceInputError(
          `compose() levels[${i}] uses another store: every level must share one store`,
        )
      }
      const key = level.limiter.keysFor(level.subject).state
      if (seen.has(key)) {
        throw new SluiceInputError(`compose() levels[${i}] repeats a policy and subject of an earlier level`)
      }
      seen.add(key)
    })
    const tag = options?.hashTag
    if (tag !== undefined && (typeof tag !== 'string' || !HASH_TAG.test(tag))) {
      throw new SluiceInputError(
        `compose() hashTag must be 1-200 characters without braces or spaces, got ${describe(tag)}`,
      )
    }
    this.levels = levels
    this.hashTag = tag
  }

  /**
   * Checks every level and charges them all, or none when any would be exceeded. With
   * `maxWaitMs`, a refusal by a rate limit of any level waits in fair order in that level's queue.
   */
  consume(costs?: Costs, options?: WaitOptions): Promise<ComposedDecision> {
    return promised(() => {
      const wait = resolveWait(options)
      const id = nextOpId()
      if (wait !== undefined) return decideComposedWaiting(this, 'consume', this.costsOf(costs), wait, id)
      return this.run('consume', costs, id).then((r) => r.decision)
    })
  }

  /** What consume would decide, charging nothing. */
  peek(costs?: Costs): Promise<ComposedDecision> {
    return promised(() => this.run('peek', costs, nextOpId()).then((r) => r.decision))
  }

  /**
   * Charges an estimate on every level (and takes their concurrency leases), or nothing; settle()
   * with the actual costs later, or cancel(). As Limiter.reserve, for all levels at once.
   */
  reserve(estimate?: Costs, options?: WaitOptions): Promise<ComposedReservation> {
    return promised(() => {
      const id = nextOpId()
      const wait = resolveWait(options)
      if (wait !== undefined) {
        const costs = this.costsOf(estimate)
        return decideComposedWaiting(this, 'reserve', costs, wait, id).then(
          (decision) => new ComposedReservation(this, id, costs, decision),
        )
      }
      return this.run('reserve', estimate, id).then(
        ({ decision, costs }) => new ComposedReservation(this, id, costs, decision),
      )
    })
  }

  /** @internal Per level: the costs of its limits (units a level does not know are not its concern). */
  costsOf(costs: Costs | undefined): number[][] {
    if (costs !== undefined && (typeof costs !== 'object' || costs === null)) {
      throw new SluiceInputError(`costs must be an object such as { tokens: 100 }, got ${describe(costs)}`)
    }
    for (const unit in costs ?? {}) {
      if (!this.levels.some((l) => l.limiter.knowsUnit(unit))) {
        throw new SluiceInputError(`unknown unit ${describe(unit)} in costs: no level counts it`)
      }
    }
    return this.levels.map(({ limiter }) => {
      if (costs === undefined) return limiter.costsFor(undefined)
      const own: Costs = {}
      for (const unit in costs) if (limiter.knowsUnit(unit)) own[unit] = costs[unit]
      return limiter.costsFor(own)
    })
  }

  /** @internal Sends one op per level, linked, and reads back each level's decision. */
  execute(ops: StoreOp[], costs: number[][], charging: boolean): Promise<ComposedDecision> {
    return this.executeOp({ ...ops[0]!, linked: ops.slice(1) }, costs, charging)
  }

  /** @internal Sends the levels' ops already linked to the first one. */
  executeOp(head: StoreOp, costs: number[][], charging: boolean): Promise<ComposedDecision> {
    return this.levels[0]!.limiter.store.execute(head).then((result) =>
      this.decisionOf(result, costs, charging),
    )
  }

  private run(mode: OpMode, given: Costs | undefined, id: string) {
    const costs = this.costsOf(given)
    const ops = this.levels.map(({ limiter, subject }, i) =>
      limiter.opFor(mode, subject, costs[i]!, id, this.hashTag),
    )
    return this.execute(ops, costs, mode === 'consume' || mode === 'reserve').then((decision) => ({
      decision,
      costs,
    }))
  }

  /** @internal The store's answer to the levels' linked ops as a composed decision. */
  decisionOf(result: StoreResult, costs: number[][], charging: boolean): ComposedDecision {
    const results = [result, ...(result.linked ?? [])]
    if (results.length !== this.levels.length) {
      throw new Error(`the store answered ${results.length} of ${this.levels.length} levels of a composed op`)
    }
    const levels = this.levels.map(({ limiter, subject }, i) =>
      limiter.toDecision(subject, { ...results[i]!, allowed: result.allowed }, costs[i]!, charging),
    )
    let deniedLevel: number | undefined
    let retry = 0
    for (let i = 0; i < levels.length; i++) {
      const d = levels[i]!
      // A level refused when one of its limits did or it is blocked; the others only went along.
      const refused = d.blocked || d.limits.some((l) => !l.allowed)
      if (result.allowed || !refused) continue
      deniedLevel ??= i
      retry = Math.max(retry, d.retryAfterMs)
    }
    const denier = deniedLevel === undefined ? undefined : levels[deniedLevel]
    return {
      allowed: result.allowed,
      retryAfterMs: result.allowed ? 0 : Math.max(1, retry),
      deniedLevel,
      deniedBy: denier?.deniedBy,
      blocked: levels.some((d) => d.blocked),
      verified: result.fallback === undefined,
      fallback: result.fallback,
      levels,
      now: result.now,
    }
  }
}

/** A composed charge made on an estimate, settled (or cancelled) on every level at once. */
export class ComposedReservation {
  private final: Promise<ComposedDecision> | undefined

  constructor(
    private readonly composite: Composite,
    readonly id: string,
    /** What the reservation charged, per level and limit. */
    readonly charged: readonly number[][],
    readonly decision: ComposedDecision,
  ) {}

  get allowed(): boolean {
    return this.decision.allowed
  }
  get retryAfterMs(): number {
    return this.decision.retryAfterMs
  }
  /** True once settle() or cancel() was called. */
  get finished(): boolean {
    return this.final !== undefined
  }

  /**
   * Charges the difference between `actual` and the estimate on every level (units not named
   * keep the estimate): more drives limits into debt, less is refunded. Releases the leases.
   * Only the first settle or cancel acts; later calls return its result.
   */
  settle(actual?: Costs): Promise<ComposedDecision> {
    if (this.final) return this.final
    let costs: number[][]
    try {
      costs = actual === undefined ? this.charged.map((c) => [...c]) : this.actualCosts(actual)
    } catch (error) {
      return Promise.reject(error)
    }
    return this.finish(costs)
  }

  /**
   * settle() with costs of each level's own: `null` refunds that level's whole charge (a level
   * the call no longer uses, such as a deployment it moved away from). One atomic step, like settle().
   */
  settleEach(actual: readonly (Costs | null)[]): Promise<ComposedDecision> {
    if (this.final) return this.final
    let costs: number[][]
    try {
      if (actual.length !== this.composite.levels.length) {
        throw new SluiceInputError(
          `settleEach() needs ${this.composite.levels.length} levels' costs, got ${actual.length}`,
        )
      }
      costs = actual.map((a, i) => (a === null ? this.charged[i]!.map(() => 0) : this.actualCosts(a)[i]!))
    } catch (error) {
      return Promise.reject(error)
    }
    return this.finish(costs)
  }

  /** Refunds the whole reservation on every level and releases the leases. */
  cancel(): Promise<ComposedDecision> {
    if (this.final) return this.final
    return this.finish(this.charged.map((c) => c.map(() => 0)))
  }

  private finish(actual: number[][]): Promise<ComposedDecision> {
    if (!this.decision.allowed) {
      this.final = Promise.resolve(this.decision)
      return this.final
    }
    const { levels, hashTag } = this.composite
    const deltas = levels.map(({ limiter }, i) =>
      actual[i]!.map((c, j) => (isInFlight(limiter.definitions[j]!.kind) ? 0 : c - this.charged[i]![j]!)),
    )
    const ops = levels.map(({ limiter, subject }, i) =>
      limiter.adjustOp(
        subject,
        this.id,
        deltas[i]!,
        [...this.charged[i]!],
        this.decision.now,
        true,
        this.decision.fallback,
        hashTag,
      ),
    )
    this.final = promised(() => this.composite.execute(ops, deltas, false))
    return this.final
  }

  private actualCosts(actual: Costs): number[][] {
    const given = this.composite.costsOf(actual)
    return this.composite.levels.map(({ limiter }, i) =>
      limiter.definitions.map((d, j) =>
        actual[d.unit] !== undefined ? given[i]![j]! : this.charged[i]![j]!,
      ),
    )
  }
}
