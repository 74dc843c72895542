import { createHash } from 'node:crypto'
import type { BlockParams } from './core/block.js'
import { describe, SluiceInputError } from './core/errors.js'
import { algorithmOf, type LimitDefinition, type Unit, WELL_KNOWN_UNITS } from './core/limits.js'
import { promised } from './core/promised.js'
import { type Decision, decisionOf, decisionOfOne, type LimitFacts, limitFacts } from './decision.js'
import { type Costs, PolicyCosts } from './limiter-costs.js'
import { type OneLimit, oneLimitPath } from './limiter-one.js'
import { type BlockOptions, blockParams, normalizeLimit } from './limiter-options.js'
import { consumeWaiting, reserveWaiting } from './limiter-wait.js'
import { nextOpId } from './op-id.js'
import { Reservation } from './reservation.js'
import type { QueueBackend } from './store/queue-types.js'
import { queuesOf } from './store/queues.js'
import type { OpMode, Store, StoreOp, StoreResult } from './store/types.js'
import { type SubjectKeys, subjectKeys } from './subject-keys.js'
import type { WaitOptions } from './waiting.js'

export type { Decision, LimitStatus } from './decision.js'
export type { BlockOptions } from './limiter-options.js'
export { Reservation } from './reservation.js'
export type { SubjectKeys } from './subject-keys.js'
export type { WaitOptions } from './waiting.js'

/**
 * Part of every state key's name: changes whenever the way a store lays out a subject's state
 * changes (2: the Redis store packs it as binary doubles), so that an upgrade starts fresh
 * instead of misreading keys written by an older version.
 */
const STATE_FORMAT = 'state-format-2;'

export type { Costs } from './limiter-costs.js'

export interface LimiterOptions {
  store: Store
  /** Names this set of limits in keys and decisions, e.g. a tier. */
  policy: string
  limits: Record<string, LimitDefinition>
  /** Prefix of every store key (default "sluice:"). */
  prefix?: string
  /** Units accepted in costs besides the limits' own and the well-known ones. */
  units?: Unit[]
  /** Report limits whose usage a call moves across this fraction (e.g. 0.8), once per window. */
  alertAt?: number
  /** Block subjects that keep getting denied. */
  block?: BlockOptions | boolean
  /** Hash every subject in keys (for secrets); otherwise only subjects that are long or unusual. */
  hashSubjects?: boolean
}

const NAME = /^[A-Za-z0-9_-]{1,64}$/
const POLICY = /^[A-Za-z0-9_.-]{1,64}$/
const PLAIN_SUBJECT = /^[A-Za-z0-9_.:@/+=-]{1,100}$/
const KEY_CACHE_SIZE = 10_000

/** A store that can decide synchronously (MemoryStore): one promise per call instead of two. */
interface SyncStore extends Store {
  executeSync(op: StoreOp): StoreResult
  /** executeSync into a result the store reuses, valid until its next op (read at once). */
  executeShared?(op: StoreOp): StoreResult
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] }

/**
 * A policy: a named set of limits over units, checked and charged together, all or nothing.
 */
export class Limiter {
  readonly store: Store
  readonly policy: string
  readonly prefix: string
  readonly names: readonly string[]
  readonly definitions: readonly LimitDefinition[]
  readonly alertAt: number | undefined
  readonly block: BlockParams | undefined
  private readonly units: ReadonlySet<string>
  private readonly hashSubjects: boolean
  private readonly keyCache = new Map<string, SubjectKeys>()
  /**
   * Names the state key's layout (the limits' names and kinds): a policy whose set of limits
   * changes reads a fresh state key rather than misreading the old one; changing a limit's
   * numbers keeps the state.
   */
  private readonly layout: string
  /** Per-limit costs from a call's Costs (costsFor). */
  private readonly costs: PolicyCosts
  /** The per-limit costs of a call that names none, not frozen, for MemoryStore decisions. */
  private readonly passingCosts: number[]
  /** The frozen Costs reserveNow saw last, with its per-limit costs. */
  private lastFrozen: { costs: Costs | undefined; perLimit: number[]; charged: number[] } = {
    costs: undefined,
    perLimit: [],
    charged: [],
  }
  /** The per-limit costs a MemoryStore decision reads, rewritten by each call that names costs. */
  private readonly scratchCosts: number[]
  private readonly syncStore: SyncStore | undefined
  /** The sync store's executeShared, when it has one. */
  private readonly sharedStore: Required<SyncStore> | undefined
  private readonly facts: readonly LimitFacts[]
  /** The op runNow fills for a store with executeShared. */
  private readonly scratchOp: Mutable<StoreOp>
  /** Only log and concurrency limits need an op id on consume (log entry / lease names). */
  private readonly needsOpId: boolean
  /** The store's queues (docs/queueing.md), looked up on the first call that may wait. */
  private queueBackend: QueueBackend | undefined
  /** consume, consumeSync and peek of one limit on a MemoryStore, without an op (limiter-one.ts). */
  private readonly one: OneLimit | undefined

  constructor(options: LimiterOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new SluiceInputError(`Limiter needs an options object, got ${describe(options)}`)
    }
    const store = options.store as Partial<Store> | undefined
    if (typeof store?.execute !== 'function') {
      throw new SluiceInputError(
        `Limiter store must be a MemoryStore, RedisStore or other Store, got ${describe(store)}`,
      )
    }
    if (typeof options.policy !== 'string' || !POLICY.test(options.policy)) {
      throw new SluiceInputError(
        `Limiter policy must be 1-64 letters, digits, "_", "-" or ".", got ${describe(options.policy)}`,
      )
    }
    if (
      typeof options.limits !== 'object' ||
      options.limits === null ||
      Object.keys(options.limits).length === 0
    ) {
      throw new SluiceInputError(
        `Limiter limits must name at least one limit, got ${describe(options.limits)}`,
      )
    }
    const prefix = options.prefix ?? 'sluice:'
    if (typeof prefix !== 'string' || /[{}]/.test(prefix)) {
      throw new SluiceInputError(`Limiter prefix must be a string without braces, got ${describe(prefix)}`)
    }
    const names: string[] = []
    const definitions: LimitDefinition[] = []
    for (const [name, def] of Object.entries(options.limits)) {
      if (!NAME.test(name))
        throw new SluiceInputError(
          `limit name must be 1-64 letters, digits, "_" or "-", got ${describe(name)}`,
        )
      names.push(name)
      definitions.push(normalizeLimit(name, def))
    }
    if (options.alertAt !== undefined) {
      const a = options.alertAt
      if (typeof a !== 'number' || !(a > 0 && a <= 1)) {
        throw new SluiceInputError(`alertAt must be a fraction in (0, 1], got ${describe(a)}`)
      }
    }
    const units = new Set<string>([...WELL_KNOWN_UNITS, ...definitions.map((d) => d.unit)])
    for (const u of options.units ?? []) {
      if (typeof u !== 'string' || u === '')
        throw new SluiceInputError(`units must be words, got ${describe(u)}`)
      units.add(u)
    }
    this.store = options.store
    this.policy = options.policy
    this.prefix = prefix
    this.names = names
    this.definitions = definitions
    this.alertAt = options.alertAt
    this.block = blockParams(options.block)
    this.units = units
    this.hashSubjects = options.hashSubjects === true
    const sync = options.store as Partial<SyncStore>
    this.syncStore = typeof sync.executeSync === 'function' ? (sync as SyncStore) : undefined
    this.sharedStore =
      this.syncStore !== undefined && typeof sync.executeShared === 'function'
        ? (sync as Required<SyncStore>)
        : undefined
    this.scratchOp = {
      mode: 'consume',
      id: '-',
      stateKey: '',
      keys: [],
      names,
      limits: definitions,
      costs: [],
      alert: undefined,
      block: undefined,
      stateHint: undefined,
    }
    this.facts = limitFacts(names, definitions)
    this.layout = createHash('sha1')
      .update(STATE_FORMAT)
      .update(names.map((name, i) => `${name}:${definitions[i]!.kind}`).join(','))
      .digest('hex')
      .slice(0, 8)
    this.needsOpId = definitions.some((d) => algorithmOf(d.kind).needsOpId)
    this.costs = new PolicyCosts(
      options.policy,
      definitions.map((d) => d.unit),
      units,
    )
    this.passingCosts = this.costs.passing
    this.scratchCosts = [...this.passingCosts]
    this.one = oneLimitPath(
      options.store,
      definitions,
      this.facts,
      this.passingCosts,
      this.scratchCosts,
      this.alertAt,
      this.block !== undefined || this.needsOpId,
    )
  }

  /**
   * Checks every limit and charges them all, or nothing when any would be exceeded. With
   * `maxWaitMs`, a refusal by a rate limit that would pass within it waits in fair order instead.
   */
  consume(subject: string, costs?: Costs, options?: WaitOptions): Promise<Decision> {
    if (options === undefined) {
      return this.one === undefined
        ? this.decide('consume', subject, costs)
        : this.decideOne(subject, costs, true)
    }
    // No closure per call: an uncontended queue should cost what the decision costs.
    try {
      const decision = consumeWaiting(this, subject, costs, options, this.needsOpId ? nextOpId() : '-')
      return decision instanceof Promise ? decision : Promise.resolve(decision)
    } catch (error) {
      return Promise.reject(error)
    }
  }

  /**
   * consume() without a promise, for a store that decides in this process (MemoryStore): the
   * same decision, returned at once. Throws SluiceInputError for any other store.
   */
  consumeSync(subject: string, costs?: Costs): Decision {
    if (this.syncStore === undefined) {
      throw new SluiceInputError(
        `consumeSync needs a store that decides synchronously (MemoryStore); policy "${this.policy}" has another: use consume()`,
      )
    }
    // A synchronous store makes the decision itself come back, not a promise.
    return (this.one?.decide(this, subject, costs, true) ??
      this.decideNow('consume', subject, costs)) as Decision
  }

  /** What consume would decide, charging nothing. */
  peek(subject: string, costs?: Costs): Promise<Decision> {
    return this.one === undefined
      ? this.decide('peek', subject, costs)
      : this.decideOne(subject, costs, false)
  }

  /**
   * Charges an estimate now and takes a concurrency lease; settle() with the actual costs later,
   * or cancel(). A denied reservation holds nothing and its settle/cancel do nothing.
   */
  reserve(subject: string, estimate?: Costs, options?: WaitOptions): Promise<Reservation> {
    if (options !== undefined)
      return promised(() => reserveWaiting(this, subject, estimate, options, nextOpId()))
    return promised(() => this.reserveNow(subject, estimate))
  }

  /**
   * @internal reserve() that answers at once when the store decides synchronously (the HTTP
   * layer's fast path: no promise per request with a MemoryStore). May throw. The op id is made
   * only for limits that name log entries or leases by it, as consume's.
   */
  reserveNow(subject: string, estimate?: Costs): Reservation | Promise<Reservation> {
    const id = this.needsOpId ? nextOpId() : '-'
    let costs: number[]
    let charged: number[]
    const last = this.lastFrozen
    if (estimate !== undefined && estimate === last.costs) {
      costs = last.perLimit
      charged = last.charged
    } else {
      costs = charged = this.costsFor(estimate)
      // A frozen Costs (an HTTP tier's fixed cost: one object for every request) keeps its
      // per-limit costs, checked once: the store reads one copy, the reservations share another.
      if (estimate !== undefined && Object.isFrozen(estimate)) {
        this.lastFrozen = { costs: estimate, perLimit: costs, charged: Object.freeze([...costs]) as number[] }
      }
    }
    const decision = this.runNow('reserve', subject, costs, id)
    if (decision instanceof Promise) {
      return decision.then((d) => new Reservation(this, subject, id, charged, d))
    }
    return new Reservation(this, subject, id, charged, decision)
  }

  /** Forgets everything about a subject: limits, alerts, strikes and blocks. */
  reset(subject: string): Promise<Decision> {
    return this.decide('reset', subject, undefined)
  }

  /** Lifts a block and forgets the subject's strikes. */
  unblock(subject: string): Promise<Decision> {
    return this.decide('unblock', subject, undefined)
  }

  /**
   * The store keys of a subject. With a `hashTag` (compose()), every key of the subject is in
   * that tag's Redis Cluster slot: `prefix{tag}policy:subject…` instead of `prefix{policy:subject}…`
   * — other keys, so a subject always decided with a tag must always be decided with the same one.
   */
  keysFor(subject: string, hashTag?: string): SubjectKeys {
    const cacheKey = hashTag === undefined ? subject : `${hashTag}\u0000${subject}`
    // The miss in a method of its own: what every call runs stays small enough to inline.
    return this.keyCache.get(cacheKey) ?? this.newKeys(subject, hashTag, cacheKey)
  }

  private newKeys(subject: string, hashTag: string | undefined, cacheKey: string): SubjectKeys {
    const keys = subjectKeys(
      this.baseKey(subject, hashTag),
      this.names,
      this.layout,
      this.alertAt,
      this.block,
    )
    // Reusing the same strings saves building and hashing them again on every call.
    if (this.keyCache.size >= KEY_CACHE_SIZE) this.keyCache.clear()
    this.keyCache.set(cacheKey, keys)
    return keys
  }

  /** @internal Used by Reservation. */
  adjust(
    subject: string,
    id: string,
    deltas: number[],
    charged: number[],
    chargedAt: number,
    release: boolean,
    fallback?: 'open' | 'local',
  ): Promise<Decision> {
    const op = this.adjustOp(subject, id, deltas, charged, chargedAt, release, fallback)
    return promised(() => this.execute(op, subject, deltas, false))
  }

  /** @internal The op that settles (or cancels) a reservation; used by Reservation and compose(). */
  adjustOp(
    subject: string,
    id: string,
    deltas: number[],
    charged: number[],
    chargedAt: number,
    release: boolean,
    fallback?: 'open' | 'local',
    hashTag?: string,
  ): StoreOp {
    const keys = this.keysFor(subject, hashTag)
    const op: StoreOp = {
      mode: 'adjust',
      id,
      stateKey: keys.state,
      keys: keys.limits,
      names: this.names,
      limits: this.definitions,
      costs: deltas,
      charged,
      chargedAt,
      release,
    }
    if (fallback !== undefined) op.fallback = fallback
    return op
  }

  /** @internal Whether costs in `unit` mean anything to this policy (its limits', the well-known, `units`). */
  knowsUnit(unit: string): boolean {
    return this.units.has(unit)
  }

  /** @internal Per-limit costs from a Costs object, validated; into `into` when given, else a new array. */
  costsFor(costs: Costs | undefined, into?: number[]): number[] {
    return this.costs.of(costs, into)
  }

  private decide(mode: OpMode, subject: string, costs: Costs | undefined): Promise<Decision> {
    if (this.syncStore === undefined) return this.decideLater(mode, subject, costs)
    // The decision is made at once: one promise for it, no closure.
    try {
      return Promise.resolve(this.decideNow(mode, subject, costs) as Decision)
    } catch (error) {
      return Promise.reject(error)
    }
  }

  /** decide() on the one-limit path (limiter-one.ts); the general path when it declines. */
  private decideOne(subject: string, costs: Costs | undefined, charge: boolean): Promise<Decision> {
    try {
      const r = this.one!.result(this, subject, costs, charge)
      if (r !== undefined) return Promise.resolve(decisionOfOne(this.one!.facts, this.policy, subject, r))
      return Promise.resolve(this.decideNow(charge ? 'consume' : 'peek', subject, costs) as Decision)
    } catch (error) {
      return Promise.reject(error)
    }
  }

  /**
   * decide() for a store that answers with a promise. Apart because of its closure: a function
   * that makes one allocates the variables it captures on every call, whichever way it goes.
   */
  private decideLater(mode: OpMode, subject: string, costs: Costs | undefined): Promise<Decision> {
    return promised(() => this.decideNow(mode, subject, costs))
  }

  /** A decision without a lease: an op id only where a sliding log or lease needs one. May throw. */
  private decideNow(mode: OpMode, subject: string, costs: Costs | undefined): Decision | Promise<Decision> {
    // Only our own store sees these arrays (it reads the op at once, keeps nothing): a reused one
    // spares the write barrier a new array paid on entering the (old) scratch op.
    let perLimit: number[]
    if (this.sharedStore === undefined) perLimit = this.costsFor(costs)
    else perLimit = costs === undefined ? this.passingCosts : this.costsFor(costs, this.scratchCosts)
    return this.runNow(mode, subject, perLimit, this.needsOpId ? nextOpId() : '-')
  }

  /** @internal The store's queues, or a clear error for a store that keeps none. */
  queues(): QueueBackend {
    if (this.queueBackend === undefined) this.queueBackend = queuesOf(this.store)
    return this.queueBackend
  }

  /** @internal Whether decisions come back at once (a MemoryStore), not as promises. */
  get decidesAtOnce(): boolean {
    return this.syncStore !== undefined
  }

  /** @internal The decision, at once from a synchronous store, else as a promise. May throw. */
  runNow(mode: OpMode, subject: string, costs: number[], id: string): Decision | Promise<Decision> {
    const charging = mode === 'consume' || mode === 'reserve'
    if (this.sharedStore !== undefined) {
      // The store reads the op at once and keeps none of it: one op object per limiter will do.
      const keys = this.keysFor(subject)
      const op = this.scratchOp
      op.mode = mode
      op.id = id
      op.stateKey = keys.state
      op.stateHint = keys.hint
      op.keys = keys.limits
      op.costs = costs
      op.alert = charging ? keys.alertOp : undefined
      op.block = keys.blockOp
      if (mode === 'reset') op.alert = { threshold: 0, keys: keys.alerts }
      return this.toDecision(subject, this.sharedStore.executeShared(op), costs, charging)
    }
    const op = this.opFor(mode, subject, costs, id)
    return this.execute(op, subject, costs, mode === 'consume' || mode === 'reserve')
  }

  /** @internal The op of a decision; used by compose(). Needs an op id where needsOpId says. */
  opFor(mode: OpMode, subject: string, costs: number[], id: string, hashTag?: string): StoreOp {
    const keys = this.keysFor(subject, hashTag)
    const charging = mode === 'consume' || mode === 'reserve'
    const op: StoreOp = {
      mode,
      id,
      stateKey: keys.state,
      keys: keys.limits,
      names: this.names,
      limits: this.definitions,
      costs,
    }
    if (charging && this.alertAt !== undefined) op.alert = { threshold: this.alertAt, keys: keys.alerts }
    if (mode === 'reset') op.alert = { threshold: 0, keys: keys.alerts }
    if (this.block) op.block = { params: this.block, key: keys.block, strikesKey: keys.strikes }
    return op
  }

  private execute(
    op: StoreOp,
    subject: string,
    costs: number[],
    charging: boolean,
  ): Decision | Promise<Decision> {
    if (this.sharedStore !== undefined) {
      return this.toDecision(subject, this.sharedStore.executeShared(op), costs, charging)
    }
    if (this.syncStore !== undefined) {
      return this.toDecision(subject, this.syncStore.executeSync(op), costs, charging)
    }
    return this.store.execute(op).then((r) => this.toDecision(subject, r, costs, charging))
  }

  private baseKey(subject: string, hashTag?: string): string {
    if (typeof subject !== 'string' || subject === '') {
      throw new SluiceInputError(`subject must be a non-empty string, got ${describe(subject)}`)
    }
    const id =
      this.hashSubjects || !PLAIN_SUBJECT.test(subject)
        ? `h-${createHash('sha256').update(subject).digest('base64url').slice(0, 27)}`
        : subject
    if (hashTag !== undefined) return `${this.prefix}{${hashTag}}${this.policy}:${id}`
    return `${this.prefix}{${this.policy}:${id}}`
  }

  /** @internal A store result as this policy's decision; used by compose(). */
  toDecision(subject: string, r: StoreResult, costs: readonly number[], charging: boolean): Decision {
    return decisionOf(this.facts, this.policy, subject, r, costs, charging)
  }
}
