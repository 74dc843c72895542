import { describe, requirePositiveInteger, SluiceInputError } from '../core/errors.js'
import type { LimitDefinition } from '../core/limits.js'
import { type BreakerState, CircuitBreaker, type Transition } from './breaker.js'
import { StoreTimeoutError, StoreUnavailableError } from './errors.js'
import { openResult, scaleLimit } from './fallback.js'
import { type RefundOutcome, refundOf } from './late-refunds.js'
import { MemoryStore } from './memory.js'
import type { QueueBackend } from './queue-types.js'
import { guardedQueues } from './queues.js'
import { StoreScriptError } from './redis/encode.js'
import type { OpMode, Store, StoreOp, StoreResult } from './types.js'

/**
 * What to do when the store cannot answer in time:
 * - `open`: let the call through, unchecked; the decision says `verified: false`.
 * - `closed`: reject with StoreUnavailableError (the HTTP layer answers 503 with Retry-After).
 * - `local`: decide in this process against each limit divided by the number of instances.
 */
export type FailMode = 'open' | 'closed' | 'local'

export const FAIL_MODES: readonly FailMode[] = ['open', 'closed', 'local']

/** The subset of a pino logger the guard uses; transitions are logged, never single requests. */
export interface StoreLogger {
  warn(details: object, message: string): void
  info(details: object, message: string): void
}

/** Hooks for metrics; each is optional. */
export interface GuardObserver {
  /** Every call sent to the store: how long it took and how it ended. */
  call?(durationMs: number, outcome: 'ok' | 'error' | 'timeout'): void
  /** An op answered by the outage policy instead of the store. */
  fallback?(failMode: FailMode, op: OpMode): void
  /** The breaker changed state ('down': calls are not attempted; 'up': they are again). */
  state?(state: BreakerState): void
  /**
   * The store applied a charge after its call had been answered by the outage policy, and the
   * guard refunded it ('ok'), or the refund failed ('error') or passed its deadline ('timeout').
   */
  lateRefund?(outcome: RefundOutcome): void
}

export interface GuardedStoreOptions {
  /** The store to guard, usually a RedisStore. */
  store: Store
  /** The outage policy of this view; `withFailMode()` gives views with other policies over the same guard. */
  failMode: FailMode
  /** Longest wait for the store, in ms (default 100). No call waits longer. */
  timeoutMs?: number
  /**
   * Deadline of the refund of a late charge (a call answered by the outage policy that the store
   * still applied afterwards), in ms (default 1,000). Refunds are made off the callers' path.
   */
  refundTimeoutMs?: number
  /** Instances sharing the store: in `local` mode each limit is divided by this (default 1). */
  instances?: number
  /** Failures in a row that stop calls to the store (default 3). */
  failureThreshold?: number
  /** While the store is down, how often it is pinged to see whether it is back (default 200 ms). */
  probeIntervalMs?: number
  /** The store `local` mode decides in (default: a new MemoryStore). */
  local?: MemoryStore
  /** Where transitions are logged (a pino logger fits). */
  logger?: StoreLogger
  /** Names the store in log lines (default "store"). */
  name?: string
}

export interface StoreHealth {
  state: BreakerState
  /** When the current state began (ms since the epoch). */
  since: number
  /** The error that brought the store down, while it is down. */
  lastError: string | undefined
}

/**
 * The part shared by every view: one breaker, one local store, one probe, for one store.
 */
class StoreGuard {
  readonly breaker: CircuitBreaker
  readonly timeoutMs: number
  readonly refundTimeoutMs: number
  readonly instances: number
  readonly probeIntervalMs: number
  readonly local: MemoryStore
  readonly observers: GuardObserver[] = []
  lastError: string | undefined
  private readonly scaled = new WeakMap<readonly LimitDefinition[], LimitDefinition[]>()
  /** Calls answered by the outage policy that the store may still apply, and their refunds. */
  private readonly late = new Set<Promise<void>>()
  /** Refunds failed in a row (logged when the first fails and when one succeeds again). */
  private refundFailures = 0
  private probeTimer: NodeJS.Timeout | undefined
  private probing = false
  private closed = false

  constructor(
    readonly primary: Store,
    readonly name: string,
    readonly logger: StoreLogger | undefined,
    options: GuardedStoreOptions,
  ) {
    this.timeoutMs =
      options.timeoutMs === undefined ? 100 : requirePositiveInteger(options.timeoutMs, 'timeoutMs')
    this.refundTimeoutMs =
      options.refundTimeoutMs === undefined
        ? 1_000
        : requirePositiveInteger(options.refundTimeoutMs, 'refundTimeoutMs')
    this.instances =
      options.instances === undefined ? 1 : requirePositiveInteger(options.instances, 'instances')
    this.probeIntervalMs =
      options.probeIntervalMs === undefined
        ? 200
        : requirePositiveInteger(options.probeIntervalMs, 'probeIntervalMs')
    const threshold =
      options.failureThreshold === undefined
        ? 3
        : requirePositiveInteger(options.failureThreshold, 'failureThreshold')
    if (options.local !== undefined && !(options.local instanceof MemoryStore)) {
      throw new SluiceInputError(`local must be a MemoryStore, got ${describe(options.local)}`)
    }
    this.local = options.local ?? new MemoryStore()
    this.breaker = new CircuitBreaker(threshold, Date.now())
  }

  execute(op: StoreOp, failMode: FailMode): Promise<StoreResult> {
    // A reservation the outage policy answered is settled where it was charged, never in the store.
    if (op.mode === 'adjust' && op.fallback !== undefined) {
      return Promise.resolve(op.fallback === 'local' ? this.runLocal(op) : openResult(op))
    }
    if (!this.breaker.up) return this.fallback(op, failMode, undefined)
    const started = performance.now()
    let call: Promise<StoreResult>
    try {
      call = this.primary.execute(op)
    } catch (error) {
      call = Promise.reject(error)
    }
    return this.withDeadline(call, this.timeoutMs, (late) => this.reconcile(op, late)).then(
      (result) => {
        this.emitCall(started, 'ok')
        this.succeeded()
        // Keep the local store from holding state the store has just forgotten.
        if (op.mode === 'reset' || op.mode === 'unblock') this.local.executeSync(this.scaleOp(op))
        return result
      },
      (error: unknown) => {
        if (error instanceof StoreScriptError || error instanceof SluiceInputError) throw error
        this.emitCall(started, error instanceof StoreTimeoutError ? 'timeout' : 'error')
        this.failed(error)
        return this.fallback(op, failMode, error)
      },
    )
  }

  /** Pings the store within the deadline; the outcome counts like any call. */
  async ping(): Promise<void> {
    try {
      await this.withDeadline(this.primary.ping(), this.timeoutMs)
    } catch (error) {
      this.failed(error)
      throw error instanceof StoreUnavailableError
        ? error
        : new StoreUnavailableError(`the store is unavailable: ${messageOf(error)}`, { cause: error })
    }
    this.succeeded()
  }

  /**
   * Resolves true once every call cut by its deadline has come back from the store and any charge
   * it made has been refunded (false if that takes longer than `timeoutMs`).
   */
  async reconciled(timeoutMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined
    const expired = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs)
    })
    try {
      while (this.late.size > 0) {
        const settled = await Promise.race([Promise.all(this.late).then(() => true as const), expired])
        if (!settled) return false
      }
      return true
    } finally {
      clearTimeout(timer)
    }
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.stopProbe()
    // Late charges still to come back are refunded before the store closes (within a bound).
    await this.reconciled(this.timeoutMs + this.refundTimeoutMs)
    await this.local.close()
    await this.primary.close()
  }

  private fallback(op: StoreOp, failMode: FailMode, cause: unknown): Promise<StoreResult> {
    for (const o of this.observers) o.fallback?.(failMode, op.mode)
    if (failMode === 'closed' || op.mode === 'reset' || op.mode === 'unblock') {
      const why = cause === undefined ? (this.lastError ?? 'it is down') : messageOf(cause)
      return Promise.reject(
        new StoreUnavailableError(`the store is unavailable (${why}); nothing was checked or changed`, {
          cause,
          retryAfterMs: 1000,
        }),
      )
    }
    if (failMode === 'open') return Promise.resolve(openResult(op))
    if (op.mode === 'adjust') {
      // A reservation the store charged: its settlement cannot be applied here. Report local state.
      return Promise.resolve(this.runLocal(peekOf(op)))
    }
    return Promise.resolve(this.runLocal(op))
  }

  private runLocal(op: StoreOp): StoreResult {
    return { ...this.local.executeSync(this.scaleOp(op)), fallback: 'local' }
  }

  /** The op with each limit divided by the number of instances (a copy; ops are never changed). */
  private scaleOp(op: StoreOp): StoreOp {
    if (this.instances === 1) return op
    let limits = this.scaled.get(op.limits)
    if (limits === undefined) {
      limits = op.limits.map((l) => scaleLimit(l, this.instances))
      this.scaled.set(op.limits, limits)
    }
    if (op.linked !== undefined) return { ...op, limits, linked: op.linked.map((part) => this.scaleOp(part)) }
    return { ...op, limits }
  }

  /**
   * `call`, or a StoreTimeoutError after `timeoutMs`. When the deadline wins, `onLate` gets the
   * result the call brings later (tracked until then, so that close() and reconciled() wait for it).
   */
  private withDeadline<T>(
    call: Promise<T>,
    timeoutMs: number,
    onLate?: (late: T) => Promise<void> | undefined,
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new StoreTimeoutError(timeoutMs))
        if (onLate === undefined) return
        const tracked: Promise<void> = call.then(onLate, () => {}).finally(() => this.late.delete(tracked))
        this.late.add(tracked)
      }, timeoutMs)
      call.then(
        (value) => {
          clearTimeout(timer)
          resolve(value)
        },
        (error: unknown) => {
          clearTimeout(timer)
          reject(error)
        },
      )
    })
  }

  /** Refunds what a call answered by the outage policy was charged when the store ran it late. */
  private reconcile(op: StoreOp, late: StoreResult): Promise<void> | undefined {
    const refund = refundOf(op, late)
    if (refund === undefined) return undefined
    let call: Promise<StoreResult>
    try {
      call = this.primary.execute(refund)
    } catch (error) {
      call = Promise.reject(error)
    }
    return this.withDeadline(call, this.refundTimeoutMs).then(
      () => this.refunded('ok', undefined),
      (error: unknown) => this.refunded(error instanceof StoreTimeoutError ? 'timeout' : 'error', error),
    )
  }

  /** Counts a refund; logs only the first failure of a run of failures and the success that ends it. */
  private refunded(outcome: RefundOutcome, error: unknown): void {
    for (const o of this.observers) o.lateRefund?.(outcome)
    if (outcome === 'ok') {
      if (this.refundFailures === 0) return
      this.logger?.info(
        { store: this.name, failed: this.refundFailures },
        `${this.name}: late charges are refunded again`,
      )
      this.refundFailures = 0
      return
    }
    if (this.refundFailures++ > 0) return
    this.logger?.warn(
      { store: this.name, err: messageOf(error), refundTimeoutMs: this.refundTimeoutMs },
      `${this.name}: a charge applied after its call was answered could not be refunded`,
    )
  }

  private emitCall(started: number, outcome: 'ok' | 'error' | 'timeout'): void {
    if (this.observers.length === 0) return
    const ms = performance.now() - started
    for (const o of this.observers) o.call?.(ms, outcome)
  }

  private succeeded(): void {
    const t = this.breaker.success(Date.now())
    if (t !== undefined) this.transitioned(t)
  }

  private failed(error: unknown): void {
    const t = this.breaker.failure(Date.now())
    if (t !== undefined) {
      this.lastError = messageOf(error)
      this.transitioned(t)
    }
  }

  private transitioned(t: Transition): void {
    if (t.to === 'down') {
      this.logger?.warn(
        { store: this.name, err: this.lastError, probeIntervalMs: this.probeIntervalMs },
        `${this.name} unavailable: answering by the outage policy until it is back`,
      )
      this.startProbe()
    } else {
      this.logger?.info(
        { store: this.name, downMs: Math.round(t.afterMs) },
        `${this.name} available again: decisions are verified`,
      )
      this.lastError = undefined
      this.stopProbe()
    }
    for (const o of this.observers) o.state?.(t.to)
  }

  private startProbe(): void {
    if (this.probeTimer !== undefined || this.closed) return
    this.probeTimer = setInterval(() => this.probe(), this.probeIntervalMs)
    this.probeTimer.unref()
  }

  private stopProbe(): void {
    clearInterval(this.probeTimer)
    this.probeTimer = undefined
  }

  private probe(): void {
    if (this.probing || this.breaker.up) return
    this.probing = true
    this.withDeadline(this.primary.ping(), this.timeoutMs)
      .then(
        () => this.succeeded(),
        () => {},
      )
      .finally(() => {
        this.probing = false
      })
  }
}

/**
 * A store with a deadline on every call, a circuit breaker, and an outage policy. Views made with
 * `withFailMode()` share the breaker, the probe and the local store, so that one guard serves
 * every tier of a gateway, each tier with its own policy.
 */
export class GuardedStore implements Store {
  readonly failMode: FailMode
  private readonly guard: StoreGuard
  private fairQueues: QueueBackend | undefined

  constructor(options: GuardedStoreOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new SluiceInputError(`GuardedStore needs { store, failMode }, got ${describe(options)}`)
    }
    this.failMode = requireFailMode(options.failMode)
    const store = options.store as Partial<Store> | undefined
    if (typeof store?.execute !== 'function' || typeof store.ping !== 'function') {
      throw new SluiceInputError(`GuardedStore store must be a Store, got ${describe(store)}`)
    }
    this.guard = new StoreGuard(options.store, options.name ?? 'store', options.logger, options)
  }

  /** A view over the same store and breaker with another outage policy. */
  withFailMode(failMode: FailMode): GuardedStore {
    const view = Object.create(GuardedStore.prototype) as GuardedStore
    return Object.assign(view, { failMode: requireFailMode(failMode), guard: this.guard })
  }

  /** The guarded store. */
  get store(): Store {
    return this.guard.primary
  }

  /** The primary's queues (docs/queueing.md); a request's first try goes through this guard. */
  get queues(): QueueBackend {
    this.fairQueues ??= guardedQueues(this, this.guard.primary)
    return this.fairQueues
  }

  /** The store `local` mode decides in. */
  get local(): MemoryStore {
    return this.guard.local
  }

  get timeoutMs(): number {
    return this.guard.timeoutMs
  }

  get instances(): number {
    return this.guard.instances
  }

  /** 'up' while calls go to the store; 'down' while the outage policy answers. */
  get state(): BreakerState {
    return this.guard.breaker.state
  }

  health(): StoreHealth {
    const b = this.guard.breaker
    return { state: b.state, since: b.since, lastError: this.guard.lastError }
  }

  /** Adds metric hooks; returns a function that removes them. */
  observe(observer: GuardObserver): () => void {
    this.guard.observers.push(observer)
    return () => {
      const i = this.guard.observers.indexOf(observer)
      if (i >= 0) this.guard.observers.splice(i, 1)
    }
  }

  execute(op: StoreOp): Promise<StoreResult> {
    return this.guard.execute(op, this.failMode)
  }

  /** Resolves when the store answers within the deadline; rejects with StoreUnavailableError. */
  ping(): Promise<void> {
    return this.guard.ping()
  }

  /**
   * Resolves true once every call cut by its deadline has come back from the store and each
   * charge the store made for it late has been refunded; false after `timeoutMs` (default 5 s).
   */
  reconciled(timeoutMs = 5_000): Promise<boolean> {
    return this.guard.reconciled(requirePositiveInteger(timeoutMs, 'reconciled timeoutMs'))
  }

  /** Closes the guard, its local store and the guarded store (shared by every view). */
  close(): Promise<void> {
    return this.guard.close()
  }
}

export { scaleLimit }

export function requireFailMode(value: unknown): FailMode {
  if (!FAIL_MODES.includes(value as FailMode)) {
    throw new SluiceInputError(
      `failMode must be one of ${FAIL_MODES.map((m) => `"${m}"`).join(', ')}, got ${describe(value)}`,
    )
  }
  return value as FailMode
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

/** The op as a peek: the same subjects, charging nothing. */
function peekOf(op: StoreOp): StoreOp {
  const peek: StoreOp = { ...op, mode: 'peek', costs: op.costs.map(() => 0) }
  if (op.linked !== undefined) peek.linked = op.linked.map(peekOf)
  return peek
}
