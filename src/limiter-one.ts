import type { LimitDefinition } from './core/limits.js'
import { type Decision, decisionOfOne, type LimitFacts } from './decision.js'
import type { Costs } from './limiter-costs.js'
import type { Layout } from './store/memory-layout.js'
import type { StateHint, StoreResult } from './store/types.js'
import type { SubjectKeys } from './subject-keys.js'

/**
 * A policy of one limit on a MemoryStore, without alerts or blocks: consume, consumeSync and peek
 * decided without a StoreOp, a loop over limits or a per-limit costs array (docs/performance.md,
 * fifth pass). Everything else (reserve, settle, reset, waiting, compose) takes the Limiter's
 * general path, on the same state.
 */

/** A store that decides such a policy on the subject's numbers (MemoryStore: memory-in-place.ts). */
export interface OneLimitStore {
  oneLimitLayout(limits: readonly LimitDefinition[]): Layout | undefined
  decideOne(
    layout: Layout,
    limit: LimitDefinition,
    stateKey: string,
    hint: StateHint,
    cost: number,
    charge: boolean,
  ): StoreResult | undefined
}

/** What the one-limit path needs of its Limiter. */
export interface OneLimitOwner {
  readonly policy: string
  keysFor(subject: string): SubjectKeys
  costsFor(costs: Costs | undefined, into?: number[]): number[]
}

export class OneLimit {
  constructor(
    private readonly store: OneLimitStore,
    private readonly layout: Layout,
    private readonly limit: LimitDefinition,
    readonly facts: LimitFacts,
    /** The limit's cost when a call names none. */
    private readonly passing: number,
    /** Where a call's costs are read into (the Limiter's scratch per-limit costs). */
    private readonly scratch: number[],
  ) {}

  /**
   * The decision of consume (`charge`) or peek; undefined when the subject's key holds anything
   * but this policy's numbers (the caller then takes the general path). May throw, as the general
   * path does: a bad cost before a bad subject.
   */
  decide(
    owner: OneLimitOwner,
    subject: string,
    costs: Costs | undefined,
    charge: boolean,
  ): Decision | undefined {
    const r = this.result(owner, subject, costs, charge)
    return r === undefined ? undefined : decisionOfOne(this.facts, owner.policy, subject, r)
  }

  /**
   * decide()'s store result, before it is made a Decision (reused: valid until the store's next
   * op). consume() and peek() make the Decision in the call to Promise.resolve (Limiter.decideOne),
   * not take it from decide(), which may answer undefined: V8 then knows its shape and fulfils the
   * promise without looking up a `then` on it (docs/performance.md, sixth pass).
   */
  result(
    owner: OneLimitOwner,
    subject: string,
    costs: Costs | undefined,
    charge: boolean,
  ): StoreResult | undefined {
    const cost = costs === undefined ? this.passing : owner.costsFor(costs, this.scratch)[0]!
    const keys = owner.keysFor(subject)
    return this.store.decideOne(this.layout, this.limit, keys.state, keys.hint, cost, charge)
  }
}

/** The one-limit path of a policy, when its store and limits allow one. */
export function oneLimitPath(
  store: object,
  limits: readonly LimitDefinition[],
  facts: readonly LimitFacts[],
  passing: readonly number[],
  scratch: number[],
  alertAt: number | undefined,
  blocks: boolean,
): OneLimit | undefined {
  if (limits.length !== 1 || alertAt !== undefined || blocks) return undefined
  const s = store as Partial<OneLimitStore>
  if (typeof s.oneLimitLayout !== 'function' || typeof s.decideOne !== 'function') return undefined
  const layout = s.oneLimitLayout(limits)
  if (layout === undefined) return undefined
  return new OneLimit(s as OneLimitStore, layout, limits[0]!, facts[0]!, passing[0]!, scratch)
}
