/**
 * The framework-agnostic HTTP layer: who a request is (identity), which limits it gets (tiers),
 * what to answer (headers, 429/401/403 bodies) and the graduated response (warn, alert, throttle,
 * block, deny). The Express, Fastify, Hono and node:http adapters are thin wrappers around
 * `Sluice.check()`; the gateway uses the separate steps (identify, limiterFor, graduate,
 * headersFor, denial) around its own reserve/settle calls.
 */
import { EventEmitter } from 'node:events'
import { pino } from 'pino'
import { describe, requirePositiveInteger, SluiceInputError } from '../core/errors.js'
import { type LimitDefinition, slidingWindow } from '../core/limits.js'
import { promised } from '../core/promised.js'
import { type Costs, type Decision, Limiter, type LimitStatus, type Reservation } from '../limiter.js'
import type { SluiceMetrics } from '../metrics.js'
import { StoreUnavailableError } from '../store/errors.js'
import { MemoryStore } from '../store/memory.js'
import type { Store } from '../store/types.js'
import { MALFORMED_KEY, readApiKey } from './api-key.js'
import {
  type AlertEvent,
  alertEventOf,
  type BlockEvent,
  blockEventOf,
  type IdentityKind,
  type SluiceEvents,
  type SluiceLogger,
} from './events.js'
import {
  addRateLimitHeaders,
  addRetryHeaders,
  formatDuration,
  type HeaderGroups,
  PolicyHeaderCache,
} from './headers.js'
import { type ClientIp, IpResolver } from './ip.js'
import { hashApiKey, type KeyRecord, type KeyRegistry, MemoryKeyRegistry } from './keys.js'
import { needsNextCall } from './next-call.js'
import {
  type AuthResult,
  type CostOption,
  type CostSpec,
  checkBoolean,
  checkFunction,
  checkOptionNames,
  fraction,
  headerName,
  type ResolvedLists,
  resolveFailedAuth,
  resolveHeaderGroups,
  resolveKeys,
  resolveList,
  resolveTiers,
  resolveWebhook,
  type SluiceOptions,
  toCosts,
} from './options.js'
import { headerOf, type RequestLike } from './request.js'
import {
  authLockoutBody,
  type ErrorBody,
  forbiddenBody,
  invalidKeyBody,
  rateLimitBody,
  unavailableBody,
  warningFor,
} from './responses.js'
import { advertisedRetryMs, DEFAULT_MAX_RETRY_WAIT_MS, shouldRetry } from './retry.js'
import type { Tier, TierScope } from './tiers.js'
import { WebhookSender } from './webhook.js'

/**
 * Graduated response, in rising order: nothing to report; this request crossed the alert share
 * of a limit; a limit is nearly spent (below `warnAt` remaining); refused with 429; refused
 * because blocked; refused with 403 (deny list).
 */
export type Level = 'ok' | 'alert' | 'warn' | 'throttle' | 'block' | 'deny'

/** Who a request counts as, and in which tier. */
export interface Identity {
  kind: IdentityKind
  /** What the tier's limits count: `ip:<address or prefix>`, `user:<id>` or `key:<key id>`. */
  subject: string
  tier: string
  scope: TierScope
  /** The client address as resolved (undefined when the socket address is unknown). */
  ip: string | undefined
  /** The address's bucket, e.g. "2001:db8:1:2::/64". */
  ipGroup: string | undefined
  userId?: string
  keyId?: string
  /** hashApiKey(key): safe to log; the key itself is never kept. */
  keyHash?: string
  key?: KeyRecord
}

/** A request that must be answered now, before any limit: bad key, failed-auth lockout, deny list. */
export interface Refusal {
  status: 401 | 403 | 429
  reason: 'invalid_api_key' | 'auth_lockout' | 'deny_list'
  headers: Record<string, string>
  body: ErrorBody
}

/** The outcome of identify(): an identity, or a refusal; allow-listed identities skip limiting. */
export interface Identification {
  identity: Identity | undefined
  refusal: Refusal | undefined
  allowListed: boolean
}

/** The graduated-response reading of one decision. */
export interface Graduation {
  level: Level
  /** A human sentence for `X-RateLimit-Warning` when a limit is nearly spent. */
  warning: string | undefined
  /** Limits this request moved across `alertAt` (each reported once per window across instances). */
  alerts: LimitStatus[]
}

/** What sluice decided about one request, as exposed to handlers (`req.sluice` and the like). */
export interface RateLimitState {
  identity: Identity | undefined
  level: Level
  decision: Decision | undefined
  warning: string | undefined
  alerts: LimitStatus[]
  /** Would have been refused, let through by shadow mode. */
  shadowed: boolean
  allowListed: boolean
  /** Not limited because `skip` said so. */
  skipped: boolean
  /** The reservation behind the decision: settle it with the real costs once they are known. */
  reservation: Reservation | undefined
  /** The reservation holds a concurrency slot, released when the response ends (releaseState). */
  holdsLease: boolean
  /**
   * Charges the real costs instead of the estimate (e.g. `{ tokens: usage.total_tokens }`) and
   * releases a concurrency slot. Idempotent; adapters call it with no costs when the response ends.
   */
  settle(actual?: Costs): Promise<Decision | undefined>
}

/** What an adapter does with a request: let it through with `headers`, or answer `status`/`body`. */
export interface CheckResult {
  proceed: boolean
  /** 200 when the request proceeds. */
  status: number
  /** Set these on the response in both cases (lower-case names). */
  headers: Record<string, string>
  body: ErrorBody | undefined
  state: RateLimitState
}

interface ResolvedTier {
  name: string
  scope: TierScope
  shadow: boolean
  limiter: Limiter
  hasConcurrency: boolean
}

const NO_ALERTS: LimitStatus[] = []
const USER_ID_MAX = 256
/** The subject of requests whose address cannot be told. */
const UNKNOWN_IP = 'ip:unknown'

class RequestState implements RateLimitState {
  level: Level = 'ok'
  decision: Decision | undefined = undefined
  warning: string | undefined = undefined
  alerts: LimitStatus[] = NO_ALERTS
  shadowed = false
  allowListed = false
  skipped = false
  reservation: Reservation | undefined = undefined
  holdsLease = false

  constructor(public identity: Identity | undefined) {}

  settle(actual?: Costs): Promise<Decision | undefined> {
    if (this.reservation === undefined) return Promise.resolve(undefined)
    return this.reservation.settle(actual)
  }
}

/**
 * Releases what a request holds when its response is over: settles its reservation with the
 * estimate unless the handler settled it already. Adapters call this on response close.
 */
export function releaseState(state: RateLimitState): Promise<unknown> | undefined {
  if (!state.holdsLease) return undefined
  const reservation = state.reservation
  if (reservation === undefined || reservation.finished) return undefined
  return reservation.settle().catch(() => undefined)
}

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

  private readonly ownsStore: boolean
  private readonly resolved = new Map<string, ResolvedTier>()
  private readonly keyLimiters = new Map<
    string,
    { limits: object; limiter: Limiter; hasConcurrency: boolean }
  >()
  private readonly apiKeyHeaders: readonly string[]
  private readonly authenticate: ((req: Req) => AuthResult | Promise<AuthResult>) | undefined
  private readonly trustedUserHeader: string | undefined
  private readonly deny: ResolvedLists
  private readonly allow: ResolvedLists
  private readonly cost: CostSpec<Req>
  private readonly staticCosts: Costs | undefined
  private readonly skip: ((req: Req) => boolean) | undefined
  private readonly logger: SluiceLogger | undefined
  private readonly webhook: WebhookSender<AlertEvent | BlockEvent> | undefined
  private readonly prefix: string | undefined
  private readonly blockOption: SluiceOptions['block']
  private readonly policyHeaders = new PolicyHeaderCache()
  private readonly metrics: SluiceMetrics | undefined
  private warnedNoAddress = false

  constructor(options: SluiceOptions<Req> = {}) {
    checkOptionNames(options)
    const o = options
    this.ownsStore = o.store === undefined
    if (o.store !== undefined && typeof (o.store as Partial<Store>).execute !== 'function') {
      throw new SluiceInputError(
        `store must be a MemoryStore, RedisStore or other Store, got ${describe(o.store)}`,
      )
    }
    this.store = o.store ?? new MemoryStore()
    this.prefix = o.prefix
    this.tiers = resolveTiers(o.tiers)
    this.anonymousTier = this.tierName(o.anonymousTier, 'anonymous', 'anonymousTier')
    if (this.tiers[this.anonymousTier]!.scope !== 'ip') {
      throw new SluiceInputError(`anonymousTier "${this.anonymousTier}" must be a tier with scope "ip"`)
    }
    this.userTier = this.tierName(
      o.userTier,
      'authenticated',
      'userTier',
      o.authenticate !== undefined || o.trustedUserHeader !== undefined,
    )
    this.headerGroups = resolveHeaderGroups(o.headers)
    this.warnAt = fraction(o.warnAt, 0.1, 'warnAt')
    this.alertAt = o.alertAt === false ? undefined : fraction(o.alertAt, 0.8, 'alertAt')
    checkBoolean(o.shadow, 'shadow')
    this.shadow = o.shadow === true
    this.concurrencyRetryCapMs =
      o.concurrencyRetryCapMs === undefined
        ? 1000
        : requirePositiveInteger(o.concurrencyRetryCapMs, 'concurrencyRetryCapMs')
    this.maxRetryWaitMs =
      o.maxRetryWaitMs === undefined
        ? DEFAULT_MAX_RETRY_WAIT_MS
        : requirePositiveInteger(o.maxRetryWaitMs, 'maxRetryWaitMs')
    if (
      o.block !== undefined &&
      typeof o.block !== 'boolean' &&
      (typeof o.block !== 'object' || o.block === null)
    ) {
      throw new SluiceInputError(
        `block must be true, false or { after, withinMs, durationsMs }, got ${describe(o.block)}`,
      )
    }
    this.blockOption = o.block ?? true
    for (const name of Object.keys(this.tiers)) this.resolveTier(name)

    this.ip = new IpResolver({
      trustProxy: o.trustProxy,
      forwardedHeader: o.forwardedHeader,
      ipv4Subnet: o.ipv4Subnet,
      ipv6Subnet: o.ipv6Subnet,
    })
    this.keys = resolveKeys(o.keys)
    if (this.keys instanceof MemoryKeyRegistry) {
      for (const record of this.keys.records()) this.keyTier(record)
    }
    const headers = o.apiKeyHeaders ?? ['x-api-key', 'authorization']
    if (!Array.isArray(headers) || headers.length === 0) {
      throw new SluiceInputError(
        `apiKeyHeaders must be a non-empty list of header names, got ${describe(headers)}`,
      )
    }
    this.apiKeyHeaders = headers.map((h, i) => headerName(h, `apiKeyHeaders[${i}]`))
    checkFunction(o.authenticate, 'authenticate')
    this.authenticate = o.authenticate
    if (o.trustedUserHeader !== undefined) {
      this.trustedUserHeader = headerName(o.trustedUserHeader, 'trustedUserHeader')
      if (!this.ip.trustsProxies) {
        throw new SluiceInputError(
          'trustedUserHeader needs trustProxy: the header is believed only from a trusted proxy, and none is configured',
        )
      }
    }
    const failed = resolveFailedAuth(o.failedAuth)
    this.failedAuth =
      failed &&
      new Limiter({
        store: failed.store ?? this.store,
        policy: '_auth',
        prefix: this.prefix,
        limits: { failures: slidingWindow({ limit: failed.limit, windowMs: failed.windowMs }) },
      })
    this.deny = resolveList(o.deny, 'deny')
    this.allow = resolveList(o.allow, 'allow')
    this.cost = o.cost ?? 1
    this.staticCosts = typeof this.cost === 'function' ? undefined : this.checkCost(this.cost, 'cost')
    if (
      o.metrics !== undefined &&
      typeof (o.metrics as Partial<SluiceMetrics>).recordDecision !== 'function'
    ) {
      throw new SluiceInputError(`metrics must be a SluiceMetrics, got ${describe(o.metrics)}`)
    }
    this.metrics = o.metrics
    checkFunction(o.skip, 'skip')
    this.skip = o.skip
    if (o.logger !== undefined && o.logger !== false) {
      if (
        typeof o.logger !== 'object' ||
        o.logger === null ||
        typeof o.logger.warn !== 'function' ||
        typeof o.logger.info !== 'function'
      ) {
        throw new SluiceInputError(
          `logger must have info() and warn() (a pino logger fits), or be false, got ${describe(o.logger)}`,
        )
      }
    }
    this.logger =
      o.logger === false
        ? undefined
        : (o.logger ?? pino({ name: 'sluice' }, pino.destination({ dest: 2, sync: true })))
    const hook = resolveWebhook(o.webhook)
    this.webhook =
      hook &&
      new WebhookSender(hook, (attempts, error, payload) => {
        this.events.emit('webhookError', { url: hook.url, attempts, error, payload })
        this.logger?.warn({ url: hook.url, attempts, error }, 'sluice webhook delivery failed')
      })
  }

  // ---------------------------------------------------------------- the whole pipeline (adapters)

  /**
   * Identifies a request, charges its tier's limits (reserve) and reads the graduated response.
   * Adapters set `headers` on the response in every case and answer `status`/`body` when
   * `proceed` is false. Call releaseState(result.state) when the response ends.
   *
   * When the store is unavailable and the tier fails closed (a GuardedStore with failMode
   * "closed"), the answer is a 503 with Retry-After rather than an exception.
   *
   * @param req the request as RequestLike.
   * @param native the framework's own request, handed to `authenticate`, `cost` and `skip`.
   * @param cost this request's cost, instead of the `cost` option (e.g. per route).
   */
  check(req: RequestLike, native?: Req, cost?: CostSpec<Req>): Promise<CheckResult> {
    return promised(() => this.checkNow(req, native, cost))
  }

  /**
   * check() that answers at once, without a promise, when every step can: a MemoryStore, no
   * asynchronous `authenticate`, key registry or `cost`, and no sliding window or log emptied by
   * this call (its reset needs a peek: nextCallMs). Otherwise a promise. May throw (where
   * check() would reject). The adapters use it so that the common case costs no microtask.
   */
  checkNow(req: RequestLike, native?: Req, cost?: CostSpec<Req>): CheckResult | Promise<CheckResult> {
    const hookArg = (native ?? req) as Req
    if (this.skip?.(hookArg)) {
      const state = new RequestState(undefined)
      state.skipped = true
      return { proceed: true, status: 200, headers: {}, body: undefined, state }
    }
    const id = this.identifyRequest(req, hookArg)
    if (id instanceof Promise) {
      return id.then(
        (i) => this.limit(i, hookArg, cost),
        (error: unknown) => this.unavailable(error, undefined),
      )
    }
    return this.limit(id, hookArg, cost)
  }

  /** Charges an identified request and reads the outcome. */
  private limit(
    id: Identification,
    hookArg: Req,
    cost: CostSpec<Req> | undefined,
  ): CheckResult | Promise<CheckResult> {
    const identity = id.identity
    if (id.refusal !== undefined) {
      const state = new RequestState(identity)
      state.level = id.refusal.status === 403 ? 'deny' : 'throttle'
      const { status, headers, body } = id.refusal
      return { proceed: false, status, headers, body, state }
    }
    if (id.allowListed) {
      const state = new RequestState(identity)
      state.allowListed = true
      return { proceed: true, status: 200, headers: {}, body: undefined, state }
    }
    const known = identity!
    const entry = this.limiterEntry(known)
    const costs =
      cost === undefined
        ? (this.staticCosts ?? this.costsFor(this.cost, hookArg))
        : typeof cost === 'function'
          ? this.costsFor(cost, hookArg)
          : toCosts(cost, 'cost')
    let reserved: Reservation | Promise<Reservation>
    let charged = costs instanceof Promise ? undefined : costs
    try {
      reserved =
        costs instanceof Promise
          ? costs.then((c) => {
              charged = c
              return entry.limiter.reserve(known.subject, c)
            })
          : entry.limiter.reserveNow(known.subject, costs)
    } catch (error) {
      return this.unavailable(error, known)
    }
    if (reserved instanceof Promise) {
      return reserved.then(
        (reservation) => this.answer(known, reservation, entry.hasConcurrency, charged),
        (error: unknown) => this.unavailable(error, known),
      )
    }
    return this.answer(known, reserved, entry.hasConcurrency, charged)
  }

  /** outcome(), once it is known when the next call would pass if this one emptied a limit. */
  private answer(
    identity: Identity,
    reservation: Reservation,
    hasConcurrency: boolean,
    costs: Costs | undefined,
  ): CheckResult | Promise<CheckResult> {
    const next = (ms?: number) => this.outcome(identity, reservation, hasConcurrency, costs, ms)
    if (!needsNextCall(reservation.decision, this.headerGroups, this.concurrencyRetryCapMs)) return next()
    // A peek that fails only costs the reset headers.
    return this.nextCallMs(identity, reservation.decision, costs).then(next, () => next())
  }

  private outcome(
    identity: Identity,
    reservation: Reservation,
    hasConcurrency: boolean,
    costs: Costs | undefined,
    next: number | undefined,
  ): CheckResult {
    const decision = reservation.decision
    this.metrics?.recordDecision(decision, identity.tier)
    const state = new RequestState(identity)
    state.reservation = reservation
    state.decision = decision
    state.holdsLease = hasConcurrency && decision.allowed
    const g = this.graduate(identity, decision)
    state.level = g.level
    state.warning = g.warning
    state.alerts = g.alerts
    if (decision.allowed) {
      return {
        proceed: true,
        status: 200,
        headers: this.headersFor(decision, g.warning, undefined, next),
        body: undefined,
        state,
      }
    }
    if (this.isShadow(identity.tier)) {
      state.shadowed = true
      return { proceed: true, status: 200, headers: this.headersFor(decision), body: undefined, state }
    }
    const denial = this.denial(decision, costs)
    return { proceed: false, status: 429, headers: denial.headers, body: denial.body, state }
  }

  /** A 503 when the store is unavailable and the tier fails closed; other errors pass on. */
  private unavailable(error: unknown, identity: Identity | undefined): CheckResult {
    if (!(error instanceof StoreUnavailableError)) throw error
    if (identity !== undefined) this.metrics?.recordUnavailable(identity.tier)
    const headers: Record<string, string> = {}
    addRetryHeaders(headers, error.retryAfterMs, true)
    const state = new RequestState(identity)
    return { proceed: false, status: 503, headers, body: unavailableBody(error.retryAfterMs), state }
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
    for (const tier of this.resolved.values()) {
      try {
        tier.limiter.costsFor(costs)
      } catch (error) {
        if (error instanceof SluiceInputError) throw new SluiceInputError(`${what}: ${error.message}`)
        throw error
      }
    }
    return costs
  }

  /** A per-route cost, checked now: a function is kept as it is (it is checked on each request). */
  routeCost(cost: CostSpec<Req>, what: string): CostSpec<Req> {
    return typeof cost === 'function' ? cost : this.checkCost(cost, what)
  }

  // ---------------------------------------------------------------- (a) identity

  /**
   * Who a request is, most specific first: API key (from `apiKeyHeaders`, checked against the
   * registry) > user (`authenticate`, or `trustedUserHeader` from a trusted proxy) > IP.
   *
   * An unknown or revoked key, or an `Authorization` that is not `Bearer <key>` (see readApiKey),
   * is refused with 401 and counted against the address's failed-auth limit; once that is spent, wrong keys from the address get 429 (`auth_lockout`) instead of 401
   * (valid keys still pass: they are 32+ random characters, not guessable). Deny-listed addresses,
   * users and keys get 403.
   *
   * @param native handed to `authenticate` (defaults to `req` itself).
   */
  identify(req: RequestLike, native?: Req): Promise<Identification> {
    return promised(() => this.identifyRequest(req, (native ?? req) as Req))
  }

  // ---------------------------------------------------------------- (b) limiters

  /**
   * The Limiter for an identity: its tier's, or one with the key's own limit overrides merged
   * over the tier's (same policy name, so blocks and unblock apply to both). Call reserve() /
   * settle() on it with `identity.subject`.
   */
  limiterFor(identity: Identity): Limiter {
    return this.limiterEntry(identity).limiter
  }

  /** The Limiter of a tier by name (for inspection, reset and unblock). */
  tierLimiter(tier: string): Limiter {
    const t = this.resolved.get(tier)
    if (t === undefined) throw new SluiceInputError(`unknown tier ${describe(tier)}`)
    return t.limiter
  }

  /** Whether shadow mode applies to a tier (its own `shadow`, else the global one). */
  isShadow(tier: string): boolean {
    return this.resolved.get(tier)?.shadow ?? this.shadow
  }

  /** Lifts a block on a subject (`ip:…`, `user:…`, `key:…`) in every tier. */
  async unblock(subject: string): Promise<void> {
    await Promise.all([...this.resolved.values()].map((t) => t.limiter.unblock(subject)))
  }

  /** The current state of a subject in each tier whose scope matches it (charging nothing). */
  async inspect(subject: string): Promise<Record<string, Decision>> {
    const scope = subject.slice(0, subject.indexOf(':'))
    const out: Record<string, Decision> = {}
    for (const t of this.resolved.values()) {
      if (t.scope === scope) out[t.name] = await t.limiter.peek(subject, { requests: 0 })
    }
    return out
  }

  // ---------------------------------------------------------------- (c) headers and bodies

  /**
   * The rate-limit headers for a decision (lower-case names), in the groups switched on (or
   * `groups`): IETF `RateLimit-Policy`/`RateLimit`, legacy `X-RateLimit-*`, OpenAI
   * `x-ratelimit-*-{requests,tokens}`; `X-RateLimit-Warning` when given a warning; and for a
   * denial `Retry-After` (≥ 1 s), `retry-after-ms` and `x-should-retry: false` when waiting
   * cannot help or takes longer than `maxRetryWaitMs`. `nextCallMs` (see nextCallMs()) lets the
   * reset of a limit this call emptied be told; without it that reset is left out.
   */
  headersFor(
    decision: Decision,
    warning?: string,
    groups: Readonly<HeaderGroups> = this.headerGroups,
    nextCallMs?: number,
  ): Record<string, string> {
    const out: Record<string, string> = {}
    // Let through unchecked while the store is down: there is nothing true to say.
    if (decision.fallback === 'open') return out
    const retry = advertisedRetryMs(decision, this.concurrencyRetryCapMs)
    const hints = { nextCallMs, concurrencyRetryCapMs: this.concurrencyRetryCapMs }
    addRateLimitHeaders(out, decision, groups, retry, this.policyHeaders, hints)
    if (warning !== undefined) out['x-ratelimit-warning'] = warning
    if (!decision.allowed && !this.isShadow(decision.policy)) {
      addRetryHeaders(out, retry, shouldRetry(decision, retry, this.maxRetryWaitMs))
    }
    return out
  }

  /**
   * The 429 for a denied decision: headers (as headersFor) and the OpenAI-shaped body. `costs`
   * (what the refused call asked for) lets the message say how far over it is.
   */
  denial(
    decision: Decision,
    costs?: Costs,
  ): { status: 429; headers: Record<string, string>; body: ErrorBody } {
    const retry = advertisedRetryMs(decision, this.concurrencyRetryCapMs)
    const headers: Record<string, string> = {}
    const hints = { concurrencyRetryCapMs: this.concurrencyRetryCapMs }
    addRateLimitHeaders(headers, decision, this.headerGroups, retry, this.policyHeaders, hints)
    addRetryHeaders(headers, retry, shouldRetry(decision, retry, this.maxRetryWaitMs))
    return { status: 429, headers, body: rateLimitBody(decision, retry, costs) }
  }

  /**
   * For an admitted call that left the limit its headers show with nothing, how long until a call
   * of the same costs would pass (a peek, charging nothing; in-flight slots left out, since they
   * free when calls end) — so that the reset headers tell that instead of guessing. Resolves to
   * undefined at once, without a store call, in every other case (see needsNextCall).
   */
  nextCallMs(identity: Identity, decision: Decision, costs?: Costs): Promise<number | undefined> {
    if (!needsNextCall(decision, this.headerGroups, this.concurrencyRetryCapMs)) {
      return Promise.resolve(undefined)
    }
    return this.limiterEntry(identity)
      .limiter.peek(identity.subject, { ...costs, concurrent: 0 })
      .then((p) => (p.allowed ? 0 : p.retryAfterMs))
  }

  // ---------------------------------------------------------------- (d) graduated response

  /**
   * Reads a decision as a level and acts on it: emits `alert` (and logs it, and posts it to the
   * webhook) for each limit the decision crossed `alertAt` on — the store reports each crossing
   * once per subject, limit and window across instances; emits `block` when this decision started
   * a block (one event across instances), `throttle` for a denial, `shadow` when shadow mode lets a denial through.
   * Call it once per charging decision.
   */
  graduate(identity: Identity, decision: Decision): Graduation {
    const alerts = decision.alerts
    for (const limit of alerts) this.reportAlert(identity, decision, limit)
    if (!decision.allowed) {
      const retryAfterMs = advertisedRetryMs(decision, this.concurrencyRetryCapMs)
      if (decision.blockedNow) this.reportBlock(identity, decision)
      if (this.isShadow(identity.tier)) {
        this.events.emit('shadow', {
          subject: identity.subject,
          tier: identity.tier,
          status: 429,
          deniedBy: decision.deniedBy,
          retryAfterMs,
        })
        this.logger?.info(
          { subject: identity.subject, tier: identity.tier, deniedBy: decision.deniedBy, retryAfterMs },
          'sluice shadow mode: would refuse with 429',
        )
      } else {
        this.events.emit('throttle', {
          subject: identity.subject,
          tier: identity.tier,
          deniedBy: decision.deniedBy,
          retryAfterMs,
          blocked: decision.blocked,
        })
      }
      return { level: decision.blocked ? 'block' : 'throttle', warning: undefined, alerts }
    }
    const warning = warningFor(decision, this.warnAt)
    const level: Level = warning !== undefined ? 'warn' : alerts.length > 0 ? 'alert' : 'ok'
    return { level, warning, alerts }
  }

  /** Waits for webhook deliveries in progress. */
  flush(): Promise<void> {
    return this.webhook?.flush() ?? Promise.resolve()
  }

  /** Flushes webhooks and closes the store if this instance made it (the default MemoryStore). */
  async close(): Promise<void> {
    await this.flush()
    if (this.ownsStore) await this.store.close()
  }

  // ---------------------------------------------------------------- internals

  private tierName(value: unknown, fallback: string, what: string, required = true): string {
    const name = value ?? fallback
    if (typeof name !== 'string' || (required && this.tiers[name] === undefined)) {
      if (value === undefined) {
        throw new SluiceInputError(
          `${what} defaults to "${fallback}", which is not among the tiers (${Object.keys(this.tiers).join(', ')}): set ${what}`,
        )
      }
      throw new SluiceInputError(
        `${what} ${describe(value)} is not among the tiers (${Object.keys(this.tiers).join(', ')})`,
      )
    }
    return name
  }

  private resolveTier(name: string): ResolvedTier {
    const tier = this.tiers[name]!
    let limiter: Limiter
    try {
      limiter = new Limiter({
        store: tier.store ?? this.store,
        policy: name,
        prefix: this.prefix,
        limits: tier.limits,
        alertAt: this.alertAt,
        block: tier.block ?? this.blockOption,
      })
    } catch (error) {
      if (error instanceof SluiceInputError) throw new SluiceInputError(`tiers.${name}: ${error.message}`)
      throw error
    }
    const resolved: ResolvedTier = {
      name,
      scope: tier.scope,
      shadow: tier.shadow ?? this.shadow,
      limiter,
      hasConcurrency: limiter.definitions.some((d) => d.kind === 'concurrency'),
    }
    this.resolved.set(name, resolved)
    return resolved
  }

  private keyTier(record: KeyRecord): ResolvedTier {
    const tier = this.resolved.get(record.tier)
    if (tier === undefined) {
      throw new SluiceInputError(
        `key ${record.id} has tier ${describe(record.tier)}, which is not among the tiers (${[...this.resolved.keys()].join(', ')})`,
      )
    }
    if (record.limits !== undefined) this.keyLimiter(record, tier)
    return tier
  }

  private keyLimiter(record: KeyRecord, tier: ResolvedTier): { limiter: Limiter; hasConcurrency: boolean } {
    const cacheKey = `${record.tier}\u0000${record.id}`
    const cached = this.keyLimiters.get(cacheKey)
    if (cached !== undefined && cached.limits === record.limits) return cached
    let limiter: Limiter
    try {
      limiter = new Limiter({
        store: this.tiers[tier.name]!.store ?? this.store,
        policy: tier.name,
        prefix: this.prefix,
        limits: withoutRemoved({ ...this.tiers[tier.name]!.limits, ...record.limits }),
        alertAt: this.alertAt,
        block: this.tiers[tier.name]!.block ?? this.blockOption,
      })
    } catch (error) {
      if (error instanceof SluiceInputError)
        throw new SluiceInputError(`key ${record.id} limits: ${error.message}`)
      throw error
    }
    const entry = {
      limits: record.limits!,
      limiter,
      hasConcurrency: limiter.definitions.some((d) => d.kind === 'concurrency'),
    }
    if (this.keyLimiters.size >= 10_000) this.keyLimiters.clear()
    this.keyLimiters.set(cacheKey, entry)
    return entry
  }

  private limiterEntry(identity: Identity): { limiter: Limiter; hasConcurrency: boolean } {
    const tier = this.resolved.get(identity.tier)
    if (tier === undefined) throw new SluiceInputError(`unknown tier ${describe(identity.tier)}`)
    if (identity.key?.limits !== undefined) return this.keyLimiter(identity.key, tier)
    return tier
  }

  private costsFor(cost: CostSpec<Req>, req: Req): Costs | Promise<Costs> {
    const value = typeof cost === 'function' ? cost(req) : cost
    if (value instanceof Promise) return value.then((v) => toCosts(v, 'cost(req)'))
    return toCosts(value, 'cost(req)')
  }

  private identifyRequest(req: RequestLike, hookArg: Req): Identification | Promise<Identification> {
    const forwarded = this.ip.trustsProxies ? headerOf(req.headers, this.ip.header) : undefined
    const client = this.ip.resolve(req.remoteAddress, forwarded)
    if (client === undefined && !this.warnedNoAddress) {
      this.warnedNoAddress = true
      this.logger?.warn(
        { remoteAddress: req.remoteAddress },
        'sluice cannot tell the client address of a request: such requests share the bucket "ip:unknown"',
      )
    }
    let allowListed = false
    if (client !== undefined) {
      if (this.deny.ips?.has(client.parsed)) return this.denyListed(client.subject, client)
      if (this.allow.ips?.has(client.parsed)) allowListed = true
    }
    if (this.keys !== undefined) {
      const key = readApiKey(req.headers, this.apiKeyHeaders)
      if (key !== undefined) return this.identifyKey(key, client, allowListed)
    }
    if (this.authenticate !== undefined) {
      const auth = this.authenticate(hookArg)
      if (isThenable(auth))
        return Promise.resolve(auth).then((a) => this.identifyUser(a, req, client, allowListed))
      return this.identifyUser(auth, req, client, allowListed)
    }
    return this.identifyUser(undefined, req, client, allowListed)
  }

  private async identifyKey(
    key: string | typeof MALFORMED_KEY,
    client: ClientIp | undefined,
    ipAllowListed: boolean,
  ): Promise<Identification> {
    const hash = key === MALFORMED_KEY ? '' : hashApiKey(key)
    const ipSubject = client?.subject ?? UNKNOWN_IP
    // A valid key is never held up by its address's failed-auth count: that would cost a store
    // call on every keyed request and lock out good clients behind the same NAT as a guesser.
    const keys = this.keys!
    const record =
      hash === ''
        ? undefined
        : await (keys.resolve !== undefined ? keys.resolve(key as string, hash) : keys.lookup(hash))
    const valid = record !== undefined && !record.revoked
    if (!valid) {
      const failure = this.failedAuth && (await this.failedAuth.consume(ipSubject))
      const lockedOut = failure !== undefined && !failure.allowed
      this.events.emit('authFailure', {
        ip: client?.ip ?? 'unknown',
        group: client?.group ?? 'unknown',
        lockedOut,
      })
      if (lockedOut) return { identity: undefined, refusal: lockout(failure), allowListed: false }
      return {
        identity: undefined,
        refusal: {
          status: 401,
          reason: 'invalid_api_key',
          headers: { 'www-authenticate': 'Bearer' },
          body: invalidKeyBody(),
        },
        allowListed: false,
      }
    }
    const tier = this.keyTier(record)
    const keyId = record.id
    const userId = record.user
    const identity: Identity = {
      kind: 'key',
      subject: subjectFor(tier.scope, client, userId, keyId),
      tier: tier.name,
      scope: tier.scope,
      ip: client?.ip,
      ipGroup: client?.group,
      keyId,
      keyHash: hash,
      key: record,
    }
    if (userId !== undefined) identity.userId = userId
    if (
      this.deny.keys.has(keyId) ||
      this.deny.keys.has(hash) ||
      (userId !== undefined && this.deny.users.has(userId))
    ) {
      return this.denyListed(identity.subject, client, identity)
    }
    const allowListed =
      ipAllowListed ||
      this.allow.keys.has(keyId) ||
      this.allow.keys.has(hash) ||
      (userId !== undefined && this.allow.users.has(userId))
    return { identity, refusal: undefined, allowListed }
  }

  private identifyUser(
    auth: AuthResult,
    req: RequestLike,
    client: ClientIp | undefined,
    ipAllowListed: boolean,
  ): Identification {
    let userId: string | undefined
    let tierName = this.userTier
    if (auth !== undefined && auth !== null) {
      if (typeof auth === 'string') {
        userId = auth
      } else if (typeof auth === 'object' && typeof auth.id === 'string') {
        userId = auth.id
        if (auth.tier !== undefined) tierName = auth.tier
      }
      if (userId === undefined || userId === '') {
        throw new SluiceInputError(
          `authenticate() must return a user id, { id, tier? } or nothing, got ${describe(auth)}`,
        )
      }
    } else if (this.trustedUserHeader !== undefined && client?.fromTrustedProxy) {
      const value = headerOf(req.headers, this.trustedUserHeader)?.trim()
      if (value !== undefined && value !== '' && value.length <= USER_ID_MAX) userId = value
    }
    if (userId === undefined) {
      const tier = this.resolved.get(this.anonymousTier)!
      const identity: Identity = {
        kind: 'ip',
        subject: client?.subject ?? UNKNOWN_IP,
        tier: tier.name,
        scope: tier.scope,
        ip: client?.ip,
        ipGroup: client?.group,
      }
      return { identity, refusal: undefined, allowListed: ipAllowListed }
    }
    const tier = this.resolved.get(tierName)
    if (tier === undefined) {
      throw new SluiceInputError(
        `authenticate() gave tier ${describe(tierName)}, which is not among the tiers (${[...this.resolved.keys()].join(', ')})`,
      )
    }
    const identity: Identity = {
      kind: 'user',
      subject: subjectFor(tier.scope, client, userId, undefined),
      tier: tier.name,
      scope: tier.scope,
      ip: client?.ip,
      ipGroup: client?.group,
      userId,
    }
    if (this.deny.users.has(userId)) return this.denyListed(identity.subject, client, identity)
    return { identity, refusal: undefined, allowListed: ipAllowListed || this.allow.users.has(userId) }
  }

  private denyListed(subject: string, client: ClientIp | undefined, identity?: Identity): Identification {
    this.events.emit('deny', { subject, ip: client?.ip ?? 'unknown', reason: 'deny_list' })
    return {
      identity,
      refusal: { status: 403, reason: 'deny_list', headers: {}, body: forbiddenBody() },
      allowListed: false,
    }
  }

  private reportAlert(identity: Identity, decision: Decision, limit: LimitStatus): void {
    const event = alertEventOf(identity, decision, limit, this.alertAt ?? 0)
    this.events.emit('alert', event)
    this.logger?.warn(
      { subject: event.subject, tier: event.tier, limit: limit.name, used: event.used },
      `sluice alert: ${event.subject} used ${Math.round(event.used * 100)}% of limit "${limit.name}"`,
    )
    if (this.webhook?.options.events.has('alert')) this.webhook.send(event)
  }

  private reportBlock(identity: Identity, decision: Decision): void {
    const event = blockEventOf(identity, decision)
    this.events.emit('block', event)
    this.logger?.warn(
      { subject: event.subject, tier: event.tier, retryAfterMs: event.retryAfterMs },
      `sluice block: ${event.subject} blocked for ${formatDuration(event.retryAfterMs)} after repeated 429s`,
    )
    if (this.webhook?.options.events.has('block')) this.webhook.send(event)
  }
}

function isThenable(value: unknown): value is PromiseLike<AuthResult> {
  return typeof (value as { then?: unknown } | null)?.then === 'function'
}

function subjectFor(
  scope: TierScope,
  client: ClientIp | undefined,
  userId: string | undefined,
  keyId: string | undefined,
): string {
  if (scope === 'ip') return client?.subject ?? UNKNOWN_IP
  if (scope === 'user' && userId !== undefined) return `user:${userId}`
  if (keyId !== undefined) return `key:${keyId}`
  return `user:${userId}`
}

function lockout(decision: Decision): Refusal {
  const headers: Record<string, string> = {}
  addRetryHeaders(headers, decision.retryAfterMs, false)
  return { status: 429, reason: 'auth_lockout', headers, body: authLockoutBody(decision.retryAfterMs) }
}

/** Creates the shared HTTP core. Same as `new Sluice(options)`. */
export function createSluice<Req = RequestLike>(options?: SluiceOptions<Req>): Sluice<Req> {
  return new Sluice<Req>(options)
}

/** A key's override of `null` removes the tier's limit of that name (limits from the control plane). */
function withoutRemoved(limits: Record<string, LimitDefinition | null>): Record<string, LimitDefinition> {
  const out: Record<string, LimitDefinition> = {}
  for (const [name, limit] of Object.entries(limits)) if (limit !== null) out[name] = limit
  return out
}
