import { isInFlight } from './core/limits.js'
import type { Costs, Decision, Limiter, LimitStatus } from './limiter.js'

/** A charge made on an estimate, to be settled with the actual costs or cancelled. */
export class Reservation {
  private final: Promise<Decision> | undefined

  constructor(
    private readonly limiter: Limiter,
    readonly subject: string,
    readonly id: string,
    /** What the reservation charged, per limit of the policy. */
    readonly charged: readonly number[],
    readonly decision: Decision,
  ) {}

  get allowed(): boolean {
    return this.decision.allowed
  }
  get retryAfterMs(): number {
    return this.decision.retryAfterMs
  }
  get deniedBy(): string | undefined {
    return this.decision.deniedBy
  }
  get blocked(): boolean {
    return this.decision.blocked
  }
  get limits(): LimitStatus[] {
    return this.decision.limits
  }
  /** True once settle() or cancel() was called. */
  get finished(): boolean {
    return this.final !== undefined
  }

  /**
   * Charges the difference between `actual` and the estimate (units not named keep the estimate):
   * more drives limits into debt, less is refunded. Releases the lease. Only the first settle or
   * cancel acts; later calls return its result.
   */
  settle(actual?: Costs): Promise<Decision> {
    if (this.final) return this.final
    let actualCosts: readonly number[]
    try {
      actualCosts = actual === undefined ? this.charged : this.actualCosts(actual)
    } catch (error) {
      return Promise.reject(error)
    }
    return this.finish(actualCosts)
  }

  /** Refunds the whole reservation and releases the lease. */
  cancel(): Promise<Decision> {
    if (this.final) return this.final
    return this.finish(this.charged.map(() => 0))
  }

  /** Charges `actual - charged` per limit and releases the lease; only the first call acts. */
  private finish(actual: readonly number[]): Promise<Decision> {
    if (!this.decision.allowed) {
      this.final = Promise.resolve(this.decision)
      return this.final
    }
    const definitions = this.limiter.definitions
    const deltas = actual.map((c, i) => (isInFlight(definitions[i]!.kind) ? 0 : c - this.charged[i]!))
    this.final = this.limiter.adjust(
      this.subject,
      this.id,
      deltas,
      [...this.charged],
      this.decision.now,
      true,
      this.decision.fallback,
    )
    return this.final
  }

  private actualCosts(actual: Costs): number[] {
    const given = this.limiter.costsFor(actual)
    return this.limiter.definitions.map((d, i) =>
      actual[d.unit] !== undefined ? given[i]! : this.charged[i]!,
    )
  }
}
