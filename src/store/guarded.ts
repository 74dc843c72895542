import { describe, requirePositiveInteger, SluiceInputError } from '../core/errors.js'
import { capacityOf, type LimitDefinition } from '../core/limits.js'
import { type BreakerState, CircuitBreaker, type Transition } from './breaker.js'
import { StoreTimeoutError, StoreUnavailableError } from './errors.js'
import { MemoryStore } from './memory.js'
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
}

export interface GuardedStoreOptions {
  /** The store to guard, usually a RedisStore. */
  store: Store
  /** The outage policy of this view; `withFailMode()` gives views with other policies over the same guard. */
  failMode: FailMode
  /** Longest wait for the store, in ms (default 100). No call waits longer. */
  timeoutMs?: number
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

/** Reservations taken by a fallback, remembered so that their settle goes where they were charged. */
const MAX_FALLBACK_RESERVATIONS = 100_000

/**
 * The part shared by every view: one breaker, one local store, one probe, for one store.
 */
class StoreGuard {
  readonly breaker: CircuitBreaker
  readonly timeoutMs: number
  readonly instances: number
  readonly probeIntervalMs: number
  readonly local: MemoryStore
  readonly observers: GuardObserver[] = []
  lastError: string | undefined
  private readonly scaled = new WeakMap<readonly LimitDefinition[], LimitDefinition[]>()
  private readonly fallbackReservations = new Map<string, 'open' | 'local'>()
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
    if (op.mode === 'adjust') {
      const where = this.fallbackReservations.get(op.id)
      if (where !== undefined) {
        this.fallbackReservations.delete(op.id)
        return Promise.resolve(where === 'local' ? this.runLocal(op) : openResult(op))
      }
    }
    if (!this.breaker.up) return this.fallback(op, failMode, undefined)
    const started = performance.now()
    let call: Promise<StoreResult>
    try {
      call = this.primary.execute(op)
    } catch (error) {
      call = Promise.reject(error)
    }
    return this.withDeadline(call).then(
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
      await this.withDeadline(this.primary.ping())
    } catch (error) {
      this.failed(error)
      throw error instanceof StoreUnavailableError
        ? error
        : new StoreUnavailableError(`the store is unavailable: ${messageOf(error)}`, { cause: error })
    }
    this.succeeded()
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.stopProbe()
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
    if (failMode === 'open') {
      if (op.mode === 'reserve') this.rememberReservation(op.id, 'open')
      return Promise.resolve(openResult(op))
    }
    if (op.mode === 'adjust') {
      // A reservation the store charged: its settlement cannot be applied here. Report local state.
      return Promise.resolve(this.runLocal({ ...op, mode: 'peek', costs: op.costs.map(() => 0) }))
    }
    const result = this.runLocal(op)
    if (op.mode === 'reserve' && result.allowed) this.rememberReservation(op.id, 'local')
    return Promise.resolve(result)
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
    return { ...op, limits }
  }

  private rememberReservation(id: string, where: 'open' | 'local'): void {
    if (this.fallbackReservations.size >= MAX_FALLBACK_RESERVATIONS) {
      const oldest = this.fallbackReservations.keys().next().value
      if (oldest !== undefined) this.fallbackReservations.delete(oldest)
    }
    this.fallbackReservations.set(id, where)
  }

  private withDeadline<T>(call: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new StoreTimeoutError(this.timeoutMs)), this.timeoutMs)
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
    this.withDeadline(this.primary.ping())
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

  /** Closes the guard, its local store and the guarded store (shared by every view). */
  close(): Promise<void> {
    return this.guard.close()
  }
}

export function requireFailMode(value: unknown): FailMode {
  if (!FAIL_MODES.includes(value as FailMode)) {
    throw new SluiceInputError(
      `failMode must be one of ${FAIL_MODES.map((m) => `"${m}"`).join(', ')}, got ${describe(value)}`,
    )
  }
  return value as FailMode
}

/** A limit with its capacity and refill divided among `instances`. */
export function scaleLimit(limit: LimitDefinition, instances: number): LimitDefinition {
  switch (limit.kind) {
    case 'tokenBucket':
      return {
        ...limit,
        capacity: limit.capacity / instances,
        refillPerSecond: limit.refillPerSecond / instances,
        intervalMs: limit.intervalMs * instances,
      }
    case 'concurrency':
      return { ...limit, limit: Math.max(1, Math.floor(limit.limit / instances)) }
    default:
      return { ...limit, limit: limit.limit / instances }
  }
}

/** What `open` answers: allowed, nothing checked, nothing charged. */
function openResult(op: StoreOp): StoreResult {
  return {
    now: Date.now(),
    allowed: true,
    blockedMs: 0,
    blockedNow: false,
    limits: op.limits.map((l) => ({
      allowed: true,
      remaining: capacityOf(l),
      resetMs: 0,
      retryAfterMs: 0,
      alerted: false,
    })),
    fallback: 'open',
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}
