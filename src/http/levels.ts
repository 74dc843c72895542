/**
 * Levels above the identity's own limits (a key's team, its end user): decided with them in one
 * atomic step (compose()), all or nothing, and read back as one Decision so that the rest of the
 * admission step (graduation, headers, 429 bodies, settling) works unchanged. A level's limits are
 * named `<level>.<limit>` in that decision (e.g. `team.budget_usd`), so a refusal names both.
 */
import { type ComposedDecision, type ComposedReservation, Composite } from '../compose.js'
import type { Costs, Decision, Limiter, LimitStatus, WaitOptions } from '../limiter.js'
import { Reservation } from '../reservation.js'

/** One level besides the identity's own: what it is called in decisions, its policy and subject. */
export interface ExtraLevel {
  /** Prefixes its limits' names in decisions and headers: `team`, `user`. */
  name: string
  limiter: Limiter
  subject: string
  /**
   * Left out of the decision's limits (so of the client's headers): a level that is not the
   * client's own quota, such as the capacity of the deployment serving the call. A refusal by it
   * still names it (`deployment.requests`).
   */
  hidden?: boolean
  /** false: a refusal by this level is answered at once even when the tier waits (a deployment, before the others are tried). */
  queue?: false
}

export interface ExtraLevels {
  levels: readonly ExtraLevel[]
  /** The Redis Cluster hash tag every level's keys share (e.g. `team:research`). */
  hashTag?: string
}

/** Given an identity, the levels decided with its own limits (undefined: its own limits alone). */
export type LevelsOf<I> = (identity: I) => ExtraLevels | undefined | Promise<ExtraLevels | undefined>

/** The composed decision as one Decision of the identity's own policy and subject. */
export function mergedDecision(
  composed: ComposedDecision,
  names: readonly string[],
  hidden?: ReadonlySet<number>,
): Decision {
  const own = composed.levels[0]!
  const limits: LimitStatus[] = [...own.limits]
  const alerts: LimitStatus[] = [...own.alerts]
  for (let i = 1; i < composed.levels.length; i++) {
    if (hidden?.has(i)) continue
    const level = composed.levels[i]!
    for (const l of level.limits) limits.push({ ...l, name: `${names[i]}.${l.name}` })
    for (const l of level.alerts) alerts.push({ ...l, name: `${names[i]}.${l.name}` })
  }
  const denier = composed.deniedLevel
  let deniedBy = composed.deniedBy
  if (denier !== undefined && denier > 0 && deniedBy !== undefined) deniedBy = `${names[denier]}.${deniedBy}`
  return {
    ...own,
    allowed: composed.allowed,
    retryAfterMs: composed.retryAfterMs,
    deniedBy: composed.allowed ? undefined : deniedBy,
    blocked: composed.blocked,
    blockedNow: composed.levels.some((d) => d.blockedNow),
    verified: composed.verified,
    fallback: composed.fallback,
    limits,
    alerts,
    now: composed.now,
    ...(composed.waitedMs !== undefined && { waitedMs: composed.waitedMs }),
  }
}

/** A composed reservation seen as a Reservation of the identity's own limiter (settle, cancel). */
export class LevelsReservation extends Reservation {
  constructor(
    limiter: Limiter,
    subject: string,
    readonly composed: ComposedReservation,
    readonly names: readonly string[],
    private readonly hidden?: ReadonlySet<number>,
  ) {
    super(
      limiter,
      subject,
      composed.id,
      composed.charged[0]!,
      mergedDecision(composed.decision, names, hidden),
    )
  }

  override get finished(): boolean {
    return this.composed.finished
  }

  override settle(actual?: Costs): Promise<Decision> {
    return this.composed.settle(actual).then((d) => mergedDecision(d, this.names, this.hidden))
  }

  override cancel(): Promise<Decision> {
    return this.composed.cancel().then((d) => mergedDecision(d, this.names, this.hidden))
  }
}

/**
 * Reserves `costs` on the identity's own limits and every extra level at once; with `wait`, a
 * refusal by a rate limit of any level waits in that level's queue (docs/queueing.md).
 */
export function reserveLevels(
  limiter: Limiter,
  subject: string,
  extra: ExtraLevels,
  costs: Costs,
  wait?: WaitOptions,
): Promise<Reservation> {
  const names = ['', ...extra.levels.map((l) => l.name)]
  const hidden = new Set<number>()
  extra.levels.forEach((l, i) => {
    if (l.hidden === true) hidden.add(i + 1)
  })
  const composite = new Composite(
    [
      { limiter, subject },
      ...extra.levels.map((l) => ({
        limiter: l.limiter,
        subject: l.subject,
        ...(l.queue === false && { queue: false as const }),
      })),
    ],
    extra.hashTag === undefined ? {} : { hashTag: extra.hashTag },
  )
  return composite
    .reserve(costs, wait)
    .then((r) => new LevelsReservation(limiter, subject, r, names, hidden.size > 0 ? hidden : undefined))
}
