import { describe, requireCost, SluiceInputError } from './core/errors.js'
import type { Unit } from './core/limits.js'

/** Cost of one call per unit, e.g. { requests: 1, tokens: 1500, usd: 0.002 }. */
export type Costs = Partial<Record<Unit, number>>

/**
 * A policy's per-limit costs from the Costs object of a call, validated: each limit charged what
 * the call names for its unit, else 1 for requests and concurrent and 0 for the rest.
 *
 * A caller names the same units in the same order call after call (often one object for every
 * call), so the units of the last Costs seen are kept with, for each limit, the place among them
 * of the unit it counts (`plan`): a call whose units come in that order is read in one pass, each
 * unit compared once, and each limit's cost picked from its place — not every unit matched to
 * every limit's. Any other call matches its units as they come and becomes the plan.
 */
export class PolicyCosts {
  /** The per-limit costs of a call that names none (shared: nothing downstream changes it). */
  readonly defaults: number[]
  /** The same, not frozen (V8 reads a frozen array through a generic IC), for MemoryStore decisions. */
  readonly passing: number[]
  /** The units of the last Costs read, in for-in order. */
  private planUnits: string[] = []
  /**
   * Per limit: where `values` holds its cost — its own default (at the limit's index) when
   * planUnits do not name its unit, else the value the call gave for it.
   */
  private plan: number[]
  /** Each limit's default cost, then the values of the call being read, in for-in order. */
  private readonly values: number[]

  constructor(
    private readonly policy: string,
    /** Each limit's unit, in order. */
    private readonly limitUnits: readonly string[],
    /** Every unit a Costs may name (the limits', the well-known ones and the policy's own). */
    private readonly units: ReadonlySet<string>,
  ) {
    this.passing = limitUnits.map((u) => (u === 'requests' || u === 'concurrent' ? 1 : 0))
    this.defaults = Object.freeze([...this.passing]) as number[]
    this.plan = limitUnits.map((_, i) => i)
    this.values = [...this.passing]
  }

  /** Per-limit costs from a Costs object, validated; into `into` when given, else a new array. */
  of(costs: Costs | undefined, into?: number[]): number[] {
    if (costs !== undefined && (typeof costs !== 'object' || costs === null)) {
      throw new SluiceInputError(`costs must be an object such as { tokens: 100 }, got ${describe(costs)}`)
    }
    if (costs === undefined) return this.defaults
    const planned = this.planUnits
    const values = this.values
    /** How many units came in the plan's order (all of them, unless `missed`). */
    let k = 0
    let missed: string[] | undefined
    let at = this.limitUnits.length
    for (const unit in costs) {
      const value = costs[unit]
      if (missed === undefined && planned[k] === unit) k++
      else {
        if (!this.units.has(unit)) {
          throw new SluiceInputError(
            `unknown unit ${describe(unit)} in costs for policy "${this.policy}" (known: ${[...this.units].join(', ')})`,
          )
        }
        missed ??= []
        missed.push(unit)
      }
      // The error's label is built only for a bad cost: a template per unit per call was a hot spot.
      if (!(typeof value === 'number' && value >= 0 && value < Number.POSITIVE_INFINITY)) {
        requireCost(value, `costs.${unit}`)
      }
      if (unit === 'concurrent' && value !== 0 && value !== 1) {
        throw new SluiceInputError(`costs.concurrent must be 0 or 1, got ${describe(value)}`)
      }
      values[at++] = value as number
    }
    if (missed !== undefined || k !== planned.length) this.replan(k, missed ?? [])
    const plan = this.plan
    const n = plan.length
    // A loop, not slice(): V8 calls a builtin for the copy (~100 instructions).
    const perLimit: number[] = into ?? new Array(n)
    for (let i = 0; i < n; i++) perLimit[i] = values[plan[i]!]!
    return perLimit
  }

  /** The plan of a call whose first `k` units were the plan's and the rest `missed`. */
  private replan(k: number, missed: string[]): void {
    const units = [...this.planUnits.slice(0, k), ...missed]
    this.planUnits = units
    const n = this.limitUnits.length
    this.plan = this.limitUnits.map((u, i) => {
      const at = units.indexOf(u)
      return at < 0 ? i : n + at
    })
  }
}
