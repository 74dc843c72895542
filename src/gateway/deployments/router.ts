/**
 * The deployments of each model, the limiter of each (its configured limits, tightened by what
 * its provider reported), and the order to try them in: by weight, among those not cooling down
 * and not reported full. `room()` answers "is there room for this call now, and if not, when".
 */
import { calendar } from '../../core/algorithms/calendar.js'
import type { LimitDefinition } from '../../core/algorithms/index.js'
import { slidingLog } from '../../core/algorithms/sliding-log.js'
import type { ExtraLevel } from '../../http/levels.js'
import { type Costs, Limiter } from '../../limiter.js'
import type { Store } from '../../store/types.js'
import { type DeploymentConfig, deploymentName } from '../config/deployments-schema.js'
import type { Board, BoardEntry } from './board.js'

/** One place a model is served. */
export interface Deployment {
  name: string
  /** The model name clients send. */
  model: string
  /** The provider's name for it (sent upstream). */
  providerModel: string
  upstream: string
  weight: number
  limits: DeploymentConfig['limits']
  /** The store subject counting its limits. */
  subject: string
}

/** A deployment with what the board says of it now. */
export interface Candidate {
  deployment: Deployment
  entry: BoardEntry
  /** Milliseconds until the board lets it take calls again (0: now). */
  waitMs: number
}

/** Provider limits are per minute; a deployment's window may be another length. */
const PROVIDER_WINDOW_MS = 60_000

export class Deployments {
  private readonly byModel = new Map<string, Deployment[]>()
  private readonly limiters = new WeakMap<Store, Map<string, Limiter | null>>()

  constructor(
    config: {
      deployments: Record<string, DeploymentConfig[]>
      fallbacks: Record<string, string>
      prefix: string
    },
    readonly board: Board,
    private readonly random: () => number = Math.random,
  ) {
    this.fallbacks = config.fallbacks
    this.prefix = config.prefix
    for (const [model, list] of Object.entries(config.deployments)) {
      this.byModel.set(
        model,
        list.map((d) => {
          const name = deploymentName(model, d)
          return {
            name,
            model,
            providerModel: d.model ?? model,
            upstream: d.upstream,
            weight: d.weight,
            limits: d.limits,
            subject: `deployment:${name}`,
          }
        }),
      )
    }
  }

  private readonly fallbacks: Record<string, string>
  private readonly prefix: string

  /** The deployments of a model (undefined: the model is routed by `models`, without deployments). */
  of(model: string): readonly Deployment[] | undefined {
    return this.byModel.get(model)
  }

  /** The model a call moves to when every deployment of `model` failed or is full. */
  fallbackOf(model: string): string | undefined {
    return this.fallbacks[model]
  }

  all(): Deployment[] {
    return [...this.byModel.values()].flat()
  }

  /**
   * The deployments of a model in the order to try them: those the board lets take calls, in a
   * weighted random order (each next one drawn by weight among the rest), then the others by how
   * soon they may. Skips `exclude` (deployments that already failed this call).
   */
  async candidates(model: string, exclude: ReadonlySet<string> = new Set()): Promise<Candidate[]> {
    const list = (this.byModel.get(model) ?? []).filter((d) => !exclude.has(d.name))
    const entries = await this.board.read(list.map((d) => d.name))
    const ready: Candidate[] = []
    const waiting: Candidate[] = []
    list.forEach((deployment, i) => {
      const entry = entries[i]!
      const waitMs = Math.max(entry.coolMs, entry.fullRequestsMs, entry.fullTokensMs)
      ;(waitMs > 0 ? waiting : ready).push({ deployment, entry, waitMs })
    })
    const ordered: Candidate[] = []
    while (ready.length > 0) {
      const total = ready.reduce((s, c) => s + c.deployment.weight, 0)
      let x = this.random() * total
      let pick = ready.length - 1
      for (let i = 0; i < ready.length; i++) {
        x -= ready[i]!.deployment.weight
        if (x < 0) {
          pick = i
          break
        }
      }
      ordered.push(ready.splice(pick, 1)[0]!)
    }
    waiting.sort((a, b) => a.waitMs - b.waitMs)
    return [...ordered, ...waiting]
  }

  /**
   * The level a deployment adds to a call's atomic decision, on `store` (the tenant's store:
   * one atomic step needs one store); undefined when it has no limits, configured or reported.
   */
  levelOf(d: Deployment, store: Store, entry: BoardEntry): ExtraLevel | undefined {
    const limiter = this.limiterOf(d, store, entry)
    return limiter === undefined
      ? undefined
      : { name: 'deployment', limiter, subject: d.subject, hidden: true }
  }

  /**
   * The deployment's limiter: its configured limits, each lowered to what the provider reported
   * (never raised past the configuration). The same limit names, so the same counts, whatever the
   * numbers: a provider that reports a smaller account tightens the very counters in use.
   */
  limiterOf(d: Deployment, store: Store, entry: BoardEntry): Limiter | undefined {
    const { window } = d.limits
    const scale = (n: number | undefined) =>
      n === undefined ? undefined : Math.max(1, Math.floor((n * window) / PROVIDER_WINDOW_MS))
    const requests = lowest(d.limits.requests, scale(entry.limitRequests))
    const tokens = lowest(d.limits.tokens, scale(entry.limitTokens))
    const usd = d.limits.usdPerDay
    const id = `${d.name}\u0000${requests}\u0000${tokens}`
    let cache = this.limiters.get(store)
    if (cache === undefined) {
      cache = new Map()
      this.limiters.set(store, cache)
    }
    let limiter = cache.get(id)
    if (limiter === undefined) {
      const limits: Record<string, LimitDefinition> = {}
      if (requests !== undefined) limits.requests = slidingLog({ limit: requests, windowMs: window })
      if (tokens !== undefined)
        limits.tokens = slidingLog({ limit: tokens, windowMs: window, unit: 'tokens' })
      if (usd !== undefined) limits.usd_per_day = calendar({ limit: usd, period: 'day', unit: 'usd' })
      limiter =
        Object.keys(limits).length === 0
          ? null
          : new Limiter({ store, policy: 'deployment', limits, prefix: this.prefix })
      if (cache.size > 1000) cache.clear()
      cache.set(id, limiter)
    }
    return limiter ?? undefined
  }

  /**
   * Whether a call of `costs` for `model` has a deployment (of it, or of its fallback model) with room now and, if not, in how many
   * milliseconds one will (Infinity: none ever can, the call is larger than every deployment's
   * limits). Charges nothing. Undefined for a model without deployments.
   */
  async room(
    model: string,
    costs: Costs,
    store: Store,
  ): Promise<{ now: boolean; retryAfterMs: number } | undefined> {
    if (this.byModel.get(model) === undefined) return undefined
    let soonest = Number.POSITIVE_INFINITY
    const fallback = this.fallbackOf(model)
    const candidates = await this.candidates(model)
    if (fallback !== undefined) candidates.push(...(await this.candidates(fallback)))
    for (const c of candidates) {
      const limiter = this.limiterOf(c.deployment, store, c.entry)
      let wait = c.waitMs
      if (limiter !== undefined) {
        const own: Costs = {}
        for (const unit of ['requests', 'tokens', 'usd'] as const) {
          if (costs[unit] !== undefined && limiter.knowsUnit(unit)) own[unit] = costs[unit]
        }
        const peek = await limiter.peek(c.deployment.subject, own)
        if (!peek.allowed) wait = Math.max(wait, peek.retryAfterMs)
      }
      if (wait === 0) return { now: true, retryAfterMs: 0 }
      soonest = Math.min(soonest, wait)
    }
    return { now: false, retryAfterMs: soonest }
  }
}

function lowest(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined) return b
  if (b === undefined) return a
  return Math.min(a, b)
}
