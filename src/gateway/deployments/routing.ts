/**
 * A call's deployment: admitted with the tenant's limits in one atomic step (the deployment's
 * limits are a level of the same compose() decision), tried in the router's order until one has
 * room; moved to another deployment when the first fails before any output, its reservation moved
 * with it; settled on the deployment that served, once.
 */
import type { Admission, Identity, Sluice } from '../../http/index.js'
import { LevelsReservation } from '../../http/levels.js'
import type { Costs, Decision, Limiter, Reservation } from '../../limiter.js'
import type { Store } from '../../store/types.js'
import type { Priority } from '../../waiting.js'
import type { Candidate, Deployment, Deployments } from './router.js'

/** The deployment serving a call, and how its charge is settled. */
export class Routing {
  /** Deployments that failed this call before any output, in order. */
  readonly failed: string[] = []
  /** The deployment's own reservation when it is not part of the tenant's (allow-listed, or moved). */
  private own: Reservation | undefined
  /** The tenant's reservation still holds the first deployment's level, which the call left. */
  private left: number | undefined

  constructor(
    public deployment: Deployment,
    /** Index of the deployment's level in the tenant's composed reservation, when it is in it. */
    private level: number | undefined,
    own: Reservation | undefined,
  ) {
    this.own = own
  }

  /** Moves the call to `next`, whose own reservation `reservation` was made (the first one's is refunded at settle). */
  moveTo(next: Deployment, reservation: Reservation | undefined): void {
    this.failed.push(this.deployment.name)
    // A deployment reserved on its own (allow-listed, or an earlier move) is refunded now.
    void this.own?.cancel().catch(() => {})
    if (this.level !== undefined) {
      this.left = this.level
      this.level = undefined
    }
    this.deployment = next
    this.own = reservation
  }

  /**
   * Settles the tenant's reservation (when limited) and the deployment's: `costs` the call's real
   * costs, or null to refund everything. The deployment the call left is refunded in the same
   * step as the tenant is settled.
   */
  async settle(tenant: Reservation | undefined, costs: Costs | null): Promise<void> {
    const own = this.own
    const ownCosts = costs === null ? null : deploymentCosts(costs)
    const tasks: Promise<unknown>[] = []
    if (tenant !== undefined) {
      if (this.left !== undefined && tenant instanceof LevelsReservation) {
        const n = tenant.names.length
        const each = Array.from({ length: n }, (_, i) => (i === this.left ? null : costs))
        tasks.push(tenant.composed.settleEach(each))
      } else if (costs === null) tasks.push(tenant.cancel())
      else tasks.push(tenant.settle(costs))
    }
    if (own !== undefined) tasks.push(ownCosts === null ? own.cancel() : own.settle(ownCosts))
    await Promise.all(tasks)
  }
}

/** What a deployment's limits count of a call's costs. */
function deploymentCosts(costs: Costs): Costs {
  const out: Costs = {}
  if (costs.tokens !== undefined) out.tokens = costs.tokens
  if (costs.usd !== undefined) out.usd = costs.usd
  return out
}

export type RouteOutcome =
  /** Admitted on a deployment (`admission` undefined: the caller is not limited). */
  | { kind: 'admitted'; admission: Admission | undefined; routing: Routing }
  /** The tenant's own limits refused: answer its admission. */
  | { kind: 'refused'; admission: Admission }
  /** No deployment has room: the earliest one will in `retryAfterMs`; `outage` when all are cooling down. */
  | { kind: 'full'; retryAfterMs: number; outage: boolean; tried: string[] }

export interface RouteRequest {
  sluice: Sluice
  deployments: Deployments
  identity: Identity
  /** The tenant's limiter (undefined: allow-listed, not limited). */
  limiter: Limiter | undefined
  model: string
  costs: Costs
  /** Only deployments this accepts (their upstream speaks the call's API). */
  usable: (d: Deployment) => boolean
  escalate?: ((decision: Decision) => Promise<Decision | undefined>) | undefined
  /** The request's priority among waiters (its tier allows the header). */
  priority?: Priority | undefined
  /** Ends a wait in a queue when the client goes away. */
  signal?: AbortSignal | undefined
}

/** A denial by the deployment's level alone: the tenant had room, so another deployment may. */
const deploymentRefused = (d: Decision) => !d.blocked && d.deniedBy?.startsWith('deployment.') === true

/** No deployment had room; `soonest` the one tried whose limits free first (where to wait). */
type Full = Extract<RouteOutcome, { kind: 'full' }> & {
  soonest?: { candidate: Candidate; retryAfterMs: number }
}

const sooner = (a: Full['soonest'], b: Full['soonest']) =>
  a === undefined || (b !== undefined && b.retryAfterMs < a.retryAfterMs) ? b : a

/**
 * Admits a call on the first deployment of its model with room, with the tenant's limits,
 * atomically. When none has room and the tenant's tier waits (docs/queueing.md), the call waits
 * in the queue of the deployment tried whose limits free first, in fair order among tenants.
 */
export async function admitRouted(r: RouteRequest): Promise<RouteOutcome> {
  const first = await admitModel(r, r.model)
  const fallback = r.deployments.fallbackOf(r.model)
  let full: Full
  if (first.kind !== 'full') return first
  if (fallback === undefined) full = first
  else {
    // Every deployment of the model is full or cooling down: its fallback model's may have room.
    const second = await admitModel(r, fallback)
    if (second.kind !== 'full') return second
    full = {
      kind: 'full',
      retryAfterMs: Math.min(first.retryAfterMs, second.retryAfterMs),
      outage: first.outage && second.outage,
      tried: [...first.tried, ...second.tried],
      soonest: sooner(first.soonest, second.soonest),
    }
  }
  const soonest = full.soonest
  if (soonest === undefined || r.limiter === undefined || !r.sluice.waits(r.identity)) return strip(full)
  const waited = await admitOn(r, soonest.candidate, true)
  return waited.kind === 'full' ? strip({ ...full, retryAfterMs: waited.retryAfterMs }) : waited
}

function strip(full: Full): RouteOutcome {
  const { soonest: _, ...outcome } = full
  return outcome
}

async function admitModel(
  r: RouteRequest,
  model: string,
): Promise<Exclude<RouteOutcome, { kind: 'full' }> | Full> {
  const candidates = (await r.deployments.candidates(model)).filter((c) => r.usable(c.deployment))
  let soonest = Number.POSITIVE_INFINITY
  let cooling = 0
  let waitOn: Full['soonest']
  const tried: string[] = []
  for (const c of candidates) {
    if (c.waitMs > 0) {
      soonest = Math.min(soonest, c.waitMs)
      if (c.entry.coolMs > 0) cooling++
      continue
    }
    tried.push(c.deployment.name)
    const outcome = await admitOn(r, c, false)
    if (outcome.kind !== 'full') return outcome
    soonest = Math.min(soonest, outcome.retryAfterMs)
    waitOn = sooner(waitOn, { candidate: c, retryAfterMs: outcome.retryAfterMs })
  }
  return {
    kind: 'full',
    retryAfterMs: soonest,
    outage: candidates.length > 0 && cooling === candidates.length,
    tried,
    soonest: waitOn,
  }
}

/**
 * Admits on one deployment. `waiting` false: a refusal by the deployment alone is answered at
 * once (another may have room); true: it waits in the deployment's queue as the tier allows.
 */
async function admitOn(r: RouteRequest, c: Candidate, waiting: boolean): Promise<RouteOutcome> {
  const store = storeOf(r)
  const level = store === undefined ? undefined : r.deployments.levelOf(c.deployment, store, c.entry)
  if (r.limiter === undefined) {
    // Not limited itself: the deployment's limits alone.
    if (level === undefined)
      return {
        kind: 'admitted',
        admission: undefined,
        routing: new Routing(c.deployment, undefined, undefined),
      }
    const own = await level.limiter.reserve(level.subject, deploymentCosts(r.costs))
    if (!own.allowed) return { kind: 'full', retryAfterMs: own.retryAfterMs, outage: false, tried: [] }
    return { kind: 'admitted', admission: undefined, routing: new Routing(c.deployment, undefined, own) }
  }
  const admission = await r.sluice.admit(r.identity, r.costs, {
    ...(r.escalate !== undefined && { escalate: r.escalate }),
    ...(r.signal !== undefined && { signal: r.signal }),
    priority: r.priority,
    ...(level !== undefined && {
      levels: [waiting ? level : { ...level, queue: false as const }],
      passOn: deploymentRefused,
    }),
  })
  if (admission.status === 0) {
    return { kind: 'full', retryAfterMs: admission.state.decision!.retryAfterMs, outage: false, tried: [] }
  }
  if (!admission.proceed) return { kind: 'refused', admission }
  const reservation = admission.state.reservation
  const index =
    level !== undefined && reservation instanceof LevelsReservation ? reservation.names.length - 1 : undefined
  return { kind: 'admitted', admission, routing: new Routing(c.deployment, index, undefined) }
}

function storeOf(r: RouteRequest): Store | undefined {
  return r.limiter?.store ?? r.sluice.tierLimiter(r.identity.tier)?.store
}

/**
 * Moves a call that failed before any output on `routing`'s deployment to another deployment of
 * its model, or of its fallback model: reserved there on the deployment's limits alone (the
 * tenant's reservation stays as it is: moved, not doubled). False when none has room.
 */
export async function moveRouted(
  deployments: Deployments,
  routing: Routing,
  store: Store | undefined,
  costs: Costs,
  usable: (d: Deployment) => boolean,
): Promise<boolean> {
  const exclude = new Set([...routing.failed, routing.deployment.name])
  const models = [routing.deployment.model]
  const fallback = deployments.fallbackOf(routing.deployment.model)
  if (fallback !== undefined) models.push(fallback)
  for (const model of models) {
    for (const c of await deployments.candidates(model, exclude)) {
      if (c.waitMs > 0 || !usable(c.deployment)) continue
      const level = store === undefined ? undefined : deployments.levelOf(c.deployment, store, c.entry)
      if (level === undefined) {
        routing.moveTo(c.deployment, undefined)
        return true
      }
      const own = await level.limiter.reserve(level.subject, deploymentCosts(costs))
      if (own.allowed) {
        routing.moveTo(c.deployment, own)
        return true
      }
    }
  }
  return false
}
