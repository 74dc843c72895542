/**
 * The one admission step of the middleware and the gateway: an identified request and its costs
 * in, what to do out — let it through with these headers, or answer this status, headers and body
 * (429 refused, 503 when the store cannot decide and the tier fails closed). It reserves; its
 * counterpart settles: `admission.state.settle(actual)` with the real costs once known (the
 * gateway's accounting settles `state.reservation`), or releaseState() with the estimate when the
 * response ends (the adapters).
 */
import type { Costs, Decision, Reservation, WaitOptions } from '../limiter.js'
import type { SluiceMetrics } from '../metrics.js'
import { StoreUnavailableError } from '../store/errors.js'
import type { Priority } from '../waiting.js'
import type { Answers } from './answers.js'
import type { Graduator } from './graduation.js'
import type { HeaderGroups } from './headers.js'
import type { Identity } from './identity.js'
import { type ExtraLevel, type LevelsOf, reserveLevels } from './levels.js'
import { needsNextCall } from './next-call.js'
import type { LimiterEntry, Policies } from './policies.js'
import type { QueueWaits } from './queue-waits.js'
import { type CheckResult, RequestState } from './state.js'

/**
 * An admitted (or refused) request: let it through with `headers`, or answer `status` (429, 503),
 * `headers` and `body`; `state` holds the decision and the reservation to settle.
 */
export type Admission = CheckResult

export interface AdmitOptions {
  /**
   * Called with a denial before it is answered; a decision it resolves to replaces it (the
   * gateway counts a request larger than a limit can ever hold as a strike toward a block).
   */
  escalate?: (decision: Decision) => Promise<Decision | undefined>
  /** Ends a wait in the tier's queue (docs/queueing.md) when the client goes away. */
  signal?: AbortSignal
  /**
   * Levels of this call alone, decided with the identity's own (and its `levels`) in the same
   * atomic step: the gateway's deployment serving the call.
   */
  levels?: readonly ExtraLevel[]
  /**
   * A denial this says is not the identity's to answer (a deployment level refused alone) is
   * given back as it is — not graduated, not counted, no 429 made — for the caller to try
   * elsewhere: `proceed` false, `status` 0, the decision in `state`.
   */
  passOn?: (decision: Decision) => boolean
  /** The request's place among waiters (its priority header), for a tier whose queue allows it. */
  priority?: Priority | undefined
}

export interface AdmitterOptions {
  policies: Policies
  graduator: Graduator
  answers: Answers
  headerGroups: Readonly<HeaderGroups>
  concurrencyRetryCapMs: number
  metrics: SluiceMetrics | undefined
  /** Levels decided with an identity's own limits in one atomic step (a key's team, its user). */
  levels?: LevelsOf<Identity> | undefined
  /** The waits this process saw end, for the admin API's view of queues. */
  waits?: QueueWaits | undefined
}

export class Admitter {
  constructor(private readonly o: AdmitterOptions) {}

  /**
   * Reserves `costs` for an identified request in its tier (or key's) limits and reads the
   * outcome. At once, without a promise, when the store decides at once (a MemoryStore) and no
   * peek is needed for the reset headers; else a promise. A store that cannot decide gives a 503
   * admission; other errors are thrown (or reject).
   */
  admit(
    identity: Identity,
    costs: Costs | Promise<Costs>,
    options?: AdmitOptions,
  ): Admission | Promise<Admission> {
    const entry = this.o.policies.entry(identity)
    let reserved: Reservation | Promise<Reservation>
    const pending = costs instanceof Promise
    let charged = pending ? undefined : costs
    try {
      const extra = this.o.levels?.(identity)
      const own = options?.levels
      reserved =
        own !== undefined && own.length > 0
          ? Promise.all([costs, extra]).then(([c, levels]) => {
              charged = c
              const all = { ...levels, levels: [...(levels?.levels ?? []), ...own] }
              return reserveLevels(
                entry.limiter,
                identity.subject,
                all,
                c,
                this.waitOf(entry, identity, options),
              )
            })
          : extra !== undefined
            ? Promise.all([costs, extra]).then(([c, levels]) => {
                charged = c
                if (levels === undefined || levels.levels.length === 0) {
                  return entry.limiter.reserve(identity.subject, c, this.waitOf(entry, identity, options))
                }
                return reserveLevels(
                  entry.limiter,
                  identity.subject,
                  levels,
                  c,
                  this.waitOf(entry, identity, options),
                )
              })
            : entry.queue !== undefined
              ? Promise.resolve(costs).then((c) => {
                  charged = c
                  return entry.limiter.reserve(identity.subject, c, this.waitOf(entry, identity, options))
                })
              : pending
                ? (costs as Promise<Costs>).then((c) => {
                    charged = c
                    return entry.limiter.reserve(identity.subject, c)
                  })
                : entry.limiter.reserveNow(identity.subject, costs)
    } catch (error) {
      return this.unavailable(error, identity)
    }
    if (reserved instanceof Promise) {
      return reserved.then(
        (reservation) => this.decide(identity, reservation, charged, options, entry),
        (error: unknown) => this.unavailable(error, identity),
      )
    }
    return this.decide(identity, reserved, charged, options, entry)
  }

  /**
   * What to answer for a reservation already made: counts the decision (metrics), graduates it
   * (events, alerts, blocks) and picks the headers or the 429. `costs` (what the request asked
   * for) lets a 429's message say how far over it is.
   */
  decide(
    identity: Identity,
    reservation: Reservation,
    costs: Costs | undefined,
    options?: AdmitOptions,
    entry: LimiterEntry = this.o.policies.entry(identity),
  ): Admission | Promise<Admission> {
    const decision = reservation.decision
    if (!decision.allowed && options?.passOn?.(decision) === true) {
      const state = new RequestState(identity)
      state.reservation = reservation
      state.decision = decision
      return { proceed: false, status: 0, headers: {}, body: undefined, state }
    }
    if (!decision.allowed && options?.escalate !== undefined) {
      return options.escalate(decision).then(
        (d) => this.outcome(identity, reservation, d ?? decision, entry, costs, undefined),
        (error: unknown) => this.unavailable(error, identity),
      )
    }
    if (!needsNextCall(decision, this.o.headerGroups, this.o.concurrencyRetryCapMs)) {
      return this.outcome(identity, reservation, decision, entry, costs, undefined)
    }
    const next = (ms?: number) => this.outcome(identity, reservation, decision, entry, costs, ms)
    // A peek that fails only costs the reset headers.
    return this.nextCallMs(identity, decision, costs).then(next, () => next())
  }

  /**
   * For an admitted call that left the limit its headers show with nothing, how long until a call
   * of the same costs would pass (a peek, charging nothing; in-flight slots left out, since they
   * free when calls end) — so that the reset headers tell that instead of guessing. Resolves to
   * undefined at once, without a store call, in every other case (see needsNextCall).
   */
  nextCallMs(identity: Identity, decision: Decision, costs?: Costs): Promise<number | undefined> {
    if (!needsNextCall(decision, this.o.headerGroups, this.o.concurrencyRetryCapMs)) {
      return Promise.resolve(undefined)
    }
    return this.o.policies
      .entry(identity)
      .limiter.peek(identity.subject, { ...costs, concurrent: 0 })
      .then((p) => (p.allowed ? 0 : p.retryAfterMs))
  }

  /** Whether an identity's tier honours the priority header (its queue's `priorities`). */
  allowsPriority(identity: Identity): boolean {
    return this.o.policies.entry(identity).queue?.priorities === true
  }

  /**
   * The wait of a tier with a queue: its options, the request's signal, metrics of who waits;
   * undefined (no wait) for a tier without one.
   */
  private waitOf(
    entry: LimiterEntry,
    identity: Identity,
    options: AdmitOptions | undefined,
  ): WaitOptions | undefined {
    if (entry.queue === undefined) return undefined
    const metrics = this.o.metrics
    const { priorities, ...queue } = entry.queue
    const wait: WaitOptions = queue
    if (priorities === true && options?.priority !== undefined) wait.priority = options.priority
    if (options?.signal !== undefined) wait.signal = options.signal
    if (metrics !== undefined) wait.onQueue = (waiting) => metrics.recordQueued(identity.tier, waiting)
    return wait
  }

  /** The 503 admission when the store is unavailable and the tier fails closed; other errors are thrown. */
  unavailable(error: unknown, identity: Identity | undefined): Admission {
    if (!(error instanceof StoreUnavailableError)) throw error
    if (identity !== undefined) this.o.metrics?.recordUnavailable(identity.tier)
    const { status, headers, body } = this.o.answers.unavailable(error.retryAfterMs)
    return { proceed: false, status, headers, body, state: new RequestState(identity) }
  }

  private outcome(
    identity: Identity,
    reservation: Reservation,
    decision: Decision,
    entry: LimiterEntry,
    costs: Costs | undefined,
    next: number | undefined,
  ): Admission {
    this.o.metrics?.recordDecision(decision, identity.tier)
    if (decision.waitedMs !== undefined) {
      this.o.metrics?.recordQueueWait(identity.tier, decision.waitedMs)
      this.o.waits?.record(identity.tier, decision.waitedMs, reservation.allowed)
    }
    const state = new RequestState(identity)
    state.reservation = reservation
    state.decision = decision
    state.holdsLease = entry.hasConcurrency && reservation.allowed
    this.o.graduator.graduateInto(state, identity, decision)
    const answers = this.o.answers
    if (reservation.allowed) {
      const headers = answers.headersFor(decision, state.warning, undefined, next)
      if (decision.waitedMs !== undefined) headers['x-sluice-queue-ms'] = String(decision.waitedMs)
      return { proceed: true, status: 200, headers, body: undefined, state }
    }
    if (this.o.policies.isShadow(identity.tier)) {
      state.shadowed = true
      return {
        proceed: true,
        status: 200,
        headers: answers.headersFor(decision, state.warning),
        body: undefined,
        state,
      }
    }
    const { status, headers, body } = answers.denial(decision, costs)
    return { proceed: false, status, headers, body, state }
  }
}
