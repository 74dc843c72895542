/**
 * The HTTP layer's entry point: one Sluice per app holds the parts a request goes through —
 * identity (identity.ts, with ip.ts and keys.ts), tiers as limiters (policies.ts), the admission
 * step (admit.ts: reserve, graduate, answer) with the graduated response (graduation.ts) and the
 * answers (answers.ts: headers, 429, 503). The Express, Fastify, Hono and node:http adapters call
 * check(); the gateway calls identify() and admit() around its own body parsing and accounting.
 */
import { EventEmitter } from 'node:events'
import { describe, SluiceInputError } from '../core/errors.js'
import { promised } from '../core/promised.js'
import type { Costs, Decision, Limiter, Reservation } from '../limiter.js'
import { MemoryStore } from '../store/memory.js'
import type { Store } from '../store/types.js'
import { type Admission, type AdmitOptions, Admitter } from './admit.js'
import { type Answer, Answers } from './answers.js'
import { Checker } from './check.js'
import { Detectors } from './detect.js'
import type { SluiceEvents } from './events.js'
import { type Graduation, Graduator } from './graduation.js'
import type { HeaderGroups } from './headers.js'
import { type Identification, Identifier, type Identity, resolveIdentity } from './identity.js'
import type { IpResolver } from './ip.js'
import type { KeyRegistry } from './keys.js'
import {
  type CostOption,
  type CostSpec,
  checkBlock,
  checkBoolean,
  checkFunction,
  checkMetrics,
  checkOptionNames,
  fraction,
  positiveIntegerOr,
  resolveHeaderGroups,
  resolveLogger,
  resolveStore,
  resolveTiers,
  resolveWebhook,
  type SluiceOptions,
  toCosts,
} from './options.js'
import { Policies } from './policies.js'
import { type QueuesReport, queuesReport } from './queue-report.js'
import { QueueWaits } from './queue-waits.js'
import type { RequestLike } from './request.js'
import { DEFAULT_MAX_RETRY_WAIT_MS } from './retry.js'
import type { CheckResult } from './state.js'
import type { Tier } from './tiers.js'

/**
 * One HTTP layer instance: tiers and their limiters over one store, identity rules, lists,
 * header settings and alert delivery. Make one per app and share it between routes.
 */
export class Sluice<Req = RequestLike> {
  readonly store: Store
  /** alert, block, throttle, shadow, authFailure, deny, webhookError. */
  readonly events = new EventEmitter<SluiceEvents>()
  readonly tiers: Readonly<Record<string, Tier>>
  readonly headerGroups: Readonly<HeaderGroups>
  readonly anonymousTier: string
  readonly userTier: string
  readonly ip: IpResolver
  readonly keys: KeyRegistry | undefined
  readonly warnAt: number
  readonly alertAt: number | undefined
  readonly shadow: boolean
  readonly concurrencyRetryCapMs: number
  /** Longer waits than this are answered with `x-should-retry: false` (default 60 s). */
  readonly maxRetryWaitMs: number
  /** The per-IP failed-auth limiter (policy "_auth"), when on. */
  readonly failedAuth: Limiter | undefined
  /** The abuse detectors, when the `detectors` option is given. */
  readonly detectors: Detectors<Req> | undefined

  private readonly ownsStore: boolean
  private readonly policies: Policies
  private readonly identifier: Identifier<Req>
  private readonly graduator: Graduator
  private readonly answers: Answers
  private readonly admitter: Admitter
  /** The waits this process saw end (the admin API's /queues). */
  readonly queueWaits = new QueueWaits()
  private readonly checker: Checker<Req>

  constructor(options: SluiceOptions<Req> = {}) {
    checkOptionNames(options)
    const o = options
    this.ownsStore = o.store === undefined
    this.store = resolveStore(o.store) ?? new MemoryStore()
    this.tiers = resolveTiers(o.tiers)
    this.anonymousTier = this.tierName(o.anonymousTier, 'anonymous', 'anonymousTier')
    if (this.tiers[this.anonymousTier]!.scope !== 'ip') {
      throw new SluiceInputError(`anonymousTier "${this.anonymousTier}" must be a tier with scope "ip"`)
    }
    const signsIn = o.authenticate !== undefined || o.trustedUserHeader !== undefined
    this.userTier = this.tierName(o.userTier, 'authenticated', 'userTier', signsIn)
    this.headerGroups = resolveHeaderGroups(o.headers)
    this.warnAt = fraction(o.warnAt, 0.1, 'warnAt')
    this.alertAt = o.alertAt === false ? undefined : fraction(o.alertAt, 0.8, 'alertAt')
    checkBoolean(o.shadow, 'shadow')
    this.shadow = o.shadow === true
    this.concurrencyRetryCapMs = positiveIntegerOr(o.concurrencyRetryCapMs, 1000, 'concurrencyRetryCapMs')
    this.maxRetryWaitMs = positiveIntegerOr(o.maxRetryWaitMs, DEFAULT_MAX_RETRY_WAIT_MS, 'maxRetryWaitMs')
    checkBlock(o.block)
    const { store, alertAt, shadow } = this
    const block = o.block ?? true
    const policies = new Policies({ tiers: this.tiers, store, prefix: o.prefix, alertAt, block, shadow })
    this.policies = policies
    const isShadow = (tier: string) => policies.isShadow(tier)

    const who = resolveIdentity(o, policies, store)
    this.ip = who.ip
    this.keys = who.keys
    this.failedAuth = who.failedAuth
    const cost = o.cost ?? 1
    const staticCosts = typeof cost === 'function' ? undefined : this.checkCost(cost, 'cost')
    checkMetrics(o.metrics)
    checkFunction(o.skip, 'skip')
    checkFunction(o.levels, 'levels')
    const logger = resolveLogger(o.logger)
    const webhook = resolveWebhook(o.webhook)

    const { events, anonymousTier, userTier, warnAt, headerGroups, concurrencyRetryCapMs, maxRetryWaitMs } =
      this
    this.identifier = new Identifier<Req>({ ...who, policies, anonymousTier, userTier, events, logger })
    this.graduator = new Graduator({
      events,
      logger,
      webhook,
      warnAt,
      alertAt,
      concurrencyRetryCapMs,
      isShadow,
    })
    this.answers = new Answers({ headerGroups, concurrencyRetryCapMs, maxRetryWaitMs, isShadow })
    const { graduator, answers } = this
    const metrics = o.metrics
    this.admitter = new Admitter({
      policies,
      graduator,
      answers,
      headerGroups,
      concurrencyRetryCapMs,
      metrics,
      levels: o.levels,
      waits: this.queueWaits,
    })
    this.detectors =
      o.detectors === undefined
        ? undefined
        : new Detectors<Req>(o.detectors, {
            store,
            prefix: o.prefix,
            events,
            logger,
            webhook,
            metrics,
            isShadow,
          })
    const detectors = this.detectors
    if (detectors !== undefined) {
      this.events.on('authFailure', (e) => detectors.failure(e.ip, e.keyPrefix))
    }
    const { identifier, admitter } = this
    this.checker = new Checker<Req>({ identifier, admitter, cost, staticCosts, skip: o.skip, detectors })
  }

  // ---------------------------------------------------------------- the whole pipeline (adapters)

  /**
   * Identifies a request, admits it (reserve, graduated response, headers or refusal) and
   * returns what to answer. Adapters set `headers` on the response in every case and answer
   * `status`/`body` when `proceed` is false. Call releaseState(result.state) when the response ends.
   *
   * When the store is unavailable and the tier fails closed (a GuardedStore with failMode
   * "closed"), the answer is a 503 with Retry-After rather than an exception.
   *
   * @param req the request as RequestLike.
   * @param native the framework's own request, handed to `authenticate`, `cost` and `skip`.
   * @param cost this request's cost, instead of the `cost` option (e.g. per route).
   */
  check(req: RequestLike, native?: Req, cost?: CostSpec<Req>): Promise<CheckResult> {
    return promised(() => this.checker.check(req, native, cost))
  }

  /**
   * check() that answers at once, without a promise, when every step can: a MemoryStore, no
   * asynchronous `authenticate`, key registry or `cost`, and no sliding window or log emptied by
   * this call (its reset needs a peek: nextCallMs). Otherwise a promise. May throw (where
   * check() would reject). The adapters use it so that the common case costs no microtask.
   */
  checkNow(req: RequestLike, native?: Req, cost?: CostSpec<Req>): CheckResult | Promise<CheckResult> {
    return this.checker.check(req, native, cost)
  }

  /**
   * Checks a cost (a number of requests or `{ unit: amount }`) against every tier, so that a bad
   * per-route cost fails when the route is declared. `what` names it in errors.
   */
  checkCost(cost: CostOption, what = 'cost'): Costs {
    if (typeof cost === 'function') {
      throw new SluiceInputError(`${what} must be a number or { unit: amount } here, got a function`)
    }
    const costs = toCosts(cost, what)
    this.policies.checkCosts(costs, what)
    // Made here from a number, so held by nobody else: frozen, a Limiter may keep its per-limit costs.
    return typeof cost === 'number' ? (Object.freeze(costs) as Costs) : costs
  }

  /** A per-route cost, checked now: a function is kept as it is (it is checked on each request). */
  routeCost(cost: CostSpec<Req>, what: string): CostSpec<Req> {
    return typeof cost === 'function' ? cost : this.checkCost(cost, what)
  }

  // ---------------------------------------------------------------- the steps (the gateway)

  /**
   * Who a request is (identity.ts): API key > user > IP; a refusal for a bad key (401, or 429
   * once the address's failed-auth limit is spent), a deny-listed subject (403).
   *
   * @param native handed to `authenticate` (defaults to `req` itself).
   */
  identify(req: RequestLike, native?: Req): Promise<Identification> {
    return promised(() => this.identifier.identify(req, (native ?? req) as Req))
  }

  /**
   * Reserves `costs` for an identified request and says what to answer (admit.ts): proceed with
   * `headers`, or `status`/`headers`/`body` (429, or 503 when the store cannot decide). Settle
   * it with the real costs (`admission.state.settle(actual)`) or releaseState() when done.
   */
  admit(identity: Identity, costs: Costs | Promise<Costs>, options?: AdmitOptions): Promise<Admission> {
    return promised(() => this.admitter.admit(identity, costs, options))
  }

  /** Whether an identity's tier honours the x-sluice-priority header (`queue.priorities`). */
  allowsPriority(identity: Identity): boolean {
    return this.admitter.allowsPriority(identity)
  }

  /** What to answer for a reservation made elsewhere (counted, graduated, headers or 429). */
  decide(identity: Identity, reservation: Reservation, costs?: Costs): Promise<Admission> {
    return promised(() => this.admitter.decide(identity, reservation, costs))
  }

  /** The 503 admission for a StoreUnavailableError (counted in metrics); any other error is thrown. */
  unavailable(error: unknown, identity: Identity | undefined): Admission {
    return this.admitter.unavailable(error, identity)
  }

  /**
   * The Limiter for an identity: its tier's, or one with the key's own limit overrides merged
   * over the tier's (same policy name, so blocks and unblock apply to both). Call reserve() /
   * settle() on it with `identity.subject`.
   */
  limiterFor(identity: Identity): Limiter {
    return this.policies.entry(identity).limiter
  }

  /** Whether a refusal of this identity may wait in a queue (its tier's or its key's settings). */
  waits(identity: Identity): boolean {
    return this.policies.entry(identity).queue !== undefined
  }

  /** Every tier's queues now: waiting (every instance's on Redis) and this process's recent waits. */
  queues(): Promise<QueuesReport> {
    return queuesReport(this.policies.all(), this.store, this.queueWaits)
  }

  /** The Limiter of a tier by name (for inspection, reset and unblock). */
  tierLimiter(tier: string): Limiter {
    return this.policies.tierLimiter(tier)
  }

  /** Whether shadow mode applies to a tier (its own `shadow`, else the global one). */
  isShadow(tier: string): boolean {
    return this.policies.isShadow(tier)
  }

  /** Lifts a block on a subject (`ip:…`, `user:…`, `key:…`) in every tier. */
  unblock(subject: string): Promise<void> {
    return this.policies.unblock(subject)
  }

  /** The current state of a subject in each tier whose scope matches it (charging nothing). */
  inspect(subject: string): Promise<Record<string, Decision>> {
    return this.policies.inspect(subject)
  }

  /** The rate-limit headers for a decision (answers.ts). */
  headersFor(decision: Decision, warning?: string, groups?: Readonly<HeaderGroups>, nextCallMs?: number) {
    return this.answers.headersFor(decision, warning, groups, nextCallMs)
  }

  /** The 429 for a denied decision (answers.ts); `costs` lets the message say how far over it is. */
  denial(decision: Decision, costs?: Costs): Answer<429> {
    return this.answers.denial(decision, costs)
  }

  /** When a call of the same costs would pass, for a call that emptied its limit (admit.ts). */
  nextCallMs(identity: Identity, decision: Decision, costs?: Costs): Promise<number | undefined> {
    return this.admitter.nextCallMs(identity, decision, costs)
  }

  /** Reads a decision as a level and reports alerts, blocks, throttles (graduation.ts). Once per charging decision. */
  graduate(identity: Identity, decision: Decision): Graduation {
    return this.graduator.graduate(identity, decision)
  }

  /** Waits for webhook deliveries (and detector steps) in progress. */
  async flush(): Promise<void> {
    await this.detectors?.flush()
    await this.graduator.flush()
  }

  /** Flushes webhooks and closes the store if this instance made it (the default MemoryStore). */
  async close(): Promise<void> {
    await this.flush()
    if (this.ownsStore) await this.store.close()
  }

  private tierName(value: unknown, fallback: string, what: string, required = true): string {
    const name = value ?? fallback
    if (typeof name !== 'string' || (required && this.tiers[name] === undefined)) {
      const tiers = Object.keys(this.tiers).join(', ')
      if (value === undefined) {
        throw new SluiceInputError(
          `${what} defaults to "${fallback}", which is not among the tiers (${tiers}): set ${what}`,
        )
      }
      throw new SluiceInputError(`${what} ${describe(value)} is not among the tiers (${tiers})`)
    }
    return name
  }
}

/** Creates the shared HTTP core. Same as `new Sluice(options)`. */
export function createSluice<Req = RequestLike>(options?: SluiceOptions<Req>): Sluice<Req> {
  return new Sluice<Req>(options)
}
