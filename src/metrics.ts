import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'
import { describe, SluiceInputError } from './core/errors.js'
import type { Costs, Decision } from './limiter.js'
import type { BlockedKeyCache } from './store/blocked-cache.js'
import type { GuardedStore } from './store/guarded.js'

export interface SluiceMetricsOptions {
  /** Registry to add the metrics to (default: a new one, so that several limiters never clash). */
  registry?: Registry
  /** Prefix of every metric name (default "sluice_"). */
  prefix?: string
  /** Also collect prom-client's process metrics (CPU, memory, event loop) under the prefix. */
  processMetrics?: boolean
}

/** What watchLedger needs of a usage ledger (the gateway's Ledger has it). */
export interface WatchableLedger {
  observe(observer: {
    writeFailed?(error: Error): void
    dropped?(count: number): void
    written?(count: number): void
  }): () => void
  readonly failing: boolean
  health(): { buffered: number }
}

/** The usage ledger's metrics, registered when a ledger is watched. */
export interface LedgerMetrics {
  up: Gauge
  buffered: Gauge
  writeFailures: Counter
  dropped: Counter
  written: Counter
}

/** How a decision was made: by the store, or by an outage policy while the store was down. */
type Source = 'store' | 'open' | 'local' | 'none'
/**
 * A decision's labels after its tier, as one key: outcome, source, then the limit (last, so that
 * a limit name is taken whole); for an allowed decision (limit "none", most calls) by source.
 */
const ALLOWED: Record<Source, string> = {
  store: 'allowed\u0000store\u0000none',
  open: 'allowed\u0000open\u0000none',
  local: 'allowed\u0000local\u0000none',
  none: 'allowed\u0000none\u0000none',
}

/**
 * Prometheus metrics for limiters, their store and the HTTP layer above them. The library records
 * nothing by itself: callers pass decisions in (recordDecision), and watchStore / watchCache hook
 * into a GuardedStore and a BlockedKeyCache. Serve `registry.metrics()` on /metrics.
 */
export class SluiceMetrics {
  readonly registry: Registry
  readonly decisions: Counter<'tier' | 'limit' | 'outcome' | 'source'>
  readonly charged: Counter<'tier' | 'unit'>
  readonly alerts: Counter<'tier' | 'limit'>
  readonly blocks: Counter<'tier'>
  readonly detections: Counter<'detector' | 'level' | 'shadow'>
  readonly detectorErrors: Counter
  readonly inFlight: Gauge<'tier'>
  readonly queueWaiting: Gauge<'tier'>
  readonly queueWait: Histogram<'tier'>
  readonly storeDuration: Histogram<'outcome'>
  readonly storeUp: Gauge
  readonly storeTransitions: Counter<'to'>
  readonly fallbacks: Counter<'fail_mode' | 'op'>
  readonly lateRefunds: Counter<'outcome'>
  readonly cacheHits: Counter
  readonly cacheMisses: Counter
  readonly cacheEntries: Gauge
  /** Created by the first watchLedger(). */
  ledger: LedgerMetrics | undefined
  private readonly caches = new Set<BlockedKeyCache>()
  private readonly ledgers = new Set<WatchableLedger>()
  private readonly prefix: string
  /** Counts of the per-request metrics, added to prom-client's at collection (see Pending). */
  private readonly pendingDecisions = new Pending<'tier' | 'limit' | 'outcome' | 'source'>((tier, rest) => {
    const first = rest.indexOf('\u0000')
    const second = rest.indexOf('\u0000', first + 1)
    const limit = rest.slice(second + 1)
    return { tier, limit, outcome: rest.slice(0, first), source: rest.slice(first + 1, second) }
  })
  private readonly pendingCharged = new Pending<'tier' | 'unit'>((tier, unit) => ({ tier, unit }))
  private readonly pendingInFlight = new Pending<'tier'>((tier) => ({ tier }))

  constructor(options: SluiceMetricsOptions = {}) {
    if (typeof options !== 'object' || options === null) {
      throw new SluiceInputError(`SluiceMetrics options must be an object, got ${describe(options)}`)
    }
    const prefix = options.prefix ?? 'sluice_'
    if (typeof prefix !== 'string' || !/^[a-zA-Z_:][a-zA-Z0-9_:]*$|^$/.test(prefix)) {
      throw new SluiceInputError(`metrics prefix must be a valid metric name prefix, got ${describe(prefix)}`)
    }
    if (options.registry !== undefined && !(options.registry instanceof Registry)) {
      throw new SluiceInputError(`registry must be a prom-client Registry, got ${describe(options.registry)}`)
    }
    this.prefix = prefix
    this.registry = options.registry ?? new Registry()
    const registers = [this.registry]
    const caches = this.caches
    const { pendingDecisions, pendingCharged, pendingInFlight } = this

    this.decisions = new Counter({
      name: `${prefix}decisions_total`,
      help: 'Limiter decisions by tier, the limit that denied ("none" when allowed), outcome and source',
      labelNames: ['tier', 'limit', 'outcome', 'source'],
      registers,
      collect() {
        pendingDecisions.flushTo(this)
      },
    })
    this.charged = new Counter({
      name: `${prefix}charged_total`,
      help: 'Units charged (tokens, usd, requests …) by tier',
      labelNames: ['tier', 'unit'],
      registers,
      collect() {
        pendingCharged.flushTo(this)
      },
    })
    this.alerts = new Counter({
      name: `${prefix}alerts_total`,
      help: 'Usage alerts (a subject crossed the alert threshold of a limit, once per window)',
      labelNames: ['tier', 'limit'],
      registers,
    })
    this.blocks = new Counter({
      name: `${prefix}blocks_total`,
      help: 'Subjects blocked for repeated denials',
      labelNames: ['tier'],
      registers,
    })
    this.detections = new Counter({
      name: `${prefix}detections_total`,
      help: 'Abuse detections (a detector raised its level for a subject, once across instances)',
      labelNames: ['detector', 'level', 'shadow'],
      registers,
    })
    this.detectorErrors = new Counter({
      name: `${prefix}detector_store_errors_total`,
      help: 'Detector steps the store failed (the request went on unobserved)',
      registers,
    })
    this.inFlight = new Gauge({
      name: `${prefix}in_flight_requests`,
      help: 'Requests being served',
      labelNames: ['tier'],
      registers,
      collect() {
        pendingInFlight.flushTo(this)
      },
    })
    this.queueWaiting = new Gauge({
      name: `${prefix}queue_waiting_requests`,
      help: 'Requests of this process waiting in a queue (docs/queueing.md)',
      labelNames: ['tier'],
      registers,
    })
    this.queueWait = new Histogram({
      name: `${prefix}queue_wait_seconds`,
      help: 'How long requests waited in a queue (admitted at the end or refused at maxWait)',
      labelNames: ['tier'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    })
    this.storeDuration = new Histogram({
      name: `${prefix}store_call_duration_seconds`,
      help: 'Time a store call took, by outcome (ok, error, timeout)',
      labelNames: ['outcome'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5],
      registers,
    })
    this.storeUp = new Gauge({
      name: `${prefix}store_up`,
      help: '1 while decisions go to the store, 0 while the outage policy answers (fallback)',
      registers,
    })
    this.storeTransitions = new Counter({
      name: `${prefix}store_transitions_total`,
      help: 'Store state changes: to="down" when fallback starts, to="up" when it ends',
      labelNames: ['to'],
      registers,
    })
    this.fallbacks = new Counter({
      name: `${prefix}fallbacks_total`,
      help: 'Store ops answered by the outage policy, by fail mode and op',
      labelNames: ['fail_mode', 'op'],
      registers,
    })
    this.lateRefunds = new Counter({
      name: `${prefix}late_refunds_total`,
      help: 'Charges the store applied after their call was answered by the outage policy, refunded (outcome="ok") or not (error, timeout)',
      labelNames: ['outcome'],
      registers,
    })
    this.cacheHits = new Counter({
      name: `${prefix}blocked_cache_hits_total`,
      help: 'Denials answered from the blocked-key cache without a store call',
      registers,
    })
    this.cacheMisses = new Counter({
      name: `${prefix}blocked_cache_misses_total`,
      help: 'Checking ops the blocked-key cache passed on to the store',
      registers,
    })
    this.cacheEntries = new Gauge({
      name: `${prefix}blocked_cache_entries`,
      help: 'Subjects with a cached denial',
      registers,
      collect() {
        let n = 0
        for (const c of caches) n += c.size
        this.set(n)
      },
    })
    if (options.processMetrics === true) collectDefaultMetrics({ register: this.registry, prefix })
  }

  /** Counts an abuse detection. */
  recordDetection(detector: string, level: string, shadow: boolean): void {
    this.detections.inc({ detector, level, shadow: String(shadow) })
  }

  recordDetectorError(): void {
    this.detectorErrors.inc()
  }

  /** Counts a decision (consume, reserve or settle) with its alerts and any block it started. */
  recordDecision(decision: Decision, tier: string = decision.policy): void {
    const source: Source = decision.fallback ?? 'store'
    if (decision.allowed) this.pendingDecisions.add(tier, ALLOWED[source], 1)
    else {
      const outcome = decision.blocked ? 'blocked' : 'denied'
      this.pendingDecisions.add(tier, `${outcome}\u0000${source}\u0000${decision.deniedBy ?? 'none'}`, 1)
    }
    for (const a of decision.alerts) this.alerts.inc({ tier, limit: a.name })
    if (decision.blockedNow) this.blocks.inc({ tier })
  }

  /** A request of `tier` took a ticket in a queue (true) or left it (false). */
  recordQueued(tier: string, waiting: boolean): void {
    if (waiting) this.queueWaiting.inc({ tier })
    else this.queueWaiting.dec({ tier })
  }

  /** An admitted request of `tier` waited `ms` in a queue. */
  recordQueueWait(tier: string, ms: number): void {
    this.queueWait.observe({ tier }, ms / 1000)
  }

  /** Counts a request refused because the store was unavailable and the tier fails closed. */
  recordUnavailable(tier: string): void {
    this.decisions.inc({ tier, limit: 'none', outcome: 'unavailable', source: 'none' })
  }

  /** Counts what a call was charged in the end (e.g. the actual costs passed to settle). */
  recordCharge(tier: string, costs: Costs): void {
    for (const unit in costs) {
      if (!Object.hasOwn(costs, unit)) continue
      const amount = costs[unit]
      if (typeof amount === 'number' && amount > 0 && Number.isFinite(amount)) {
        this.pendingCharged.add(tier, unit, amount)
      }
    }
  }

  /** Counts a request in flight; call the returned function once when it ends. */
  trackInFlight(tier: string): () => void {
    const pending = this.pendingInFlight
    pending.add(tier, '', 1)
    let done = false
    return () => {
      if (done) return
      done = true
      pending.add(tier, '', -1)
    }
  }

  /** Records store latency, fallbacks and the breaker state of a GuardedStore (any of its views). */
  watchStore(store: GuardedStore): () => void {
    this.storeUp.set(store.state === 'up' ? 1 : 0)
    return store.observe({
      call: (ms, outcome) => this.storeDuration.observe({ outcome }, ms / 1000),
      fallback: (failMode, op) => this.fallbacks.inc({ fail_mode: failMode, op }),
      lateRefund: (outcome) => this.lateRefunds.inc({ outcome }),
      state: (state) => {
        this.storeUp.set(state === 'up' ? 1 : 0)
        this.storeTransitions.inc({ to: state })
      },
    })
  }

  /** Records hits, misses and size of a BlockedKeyCache. */
  watchCache(cache: BlockedKeyCache): () => void {
    this.caches.add(cache)
    const stop = cache.observe({ hit: () => this.cacheHits.inc(), miss: () => this.cacheMisses.inc() })
    return () => {
      stop()
      this.caches.delete(cache)
    }
  }

  /**
   * Records the health of a usage ledger: whether it writes, records waiting in memory, failed
   * writes, records dropped when its buffer was full, records written.
   */
  watchLedger(ledger: WatchableLedger): () => void {
    const metrics = this.ledgerMetrics()
    this.ledgers.add(ledger)
    const stop = ledger.observe({
      writeFailed: () => metrics.writeFailures.inc(),
      dropped: (count) => metrics.dropped.inc(count),
      written: (count) => metrics.written.inc(count),
    })
    return () => {
      stop()
      this.ledgers.delete(ledger)
    }
  }

  private ledgerMetrics(): LedgerMetrics {
    if (this.ledger !== undefined) return this.ledger
    const prefix = this.prefix
    const registers = [this.registry]
    const ledgers = this.ledgers
    this.ledger = {
      up: new Gauge({
        name: `${prefix}ledger_up`,
        help: '1 while the usage ledger writes, 0 while its writes fail (records wait in memory)',
        registers,
        collect() {
          this.set([...ledgers].some((l) => l.failing) ? 0 : 1)
        },
      }),
      buffered: new Gauge({
        name: `${prefix}ledger_buffered_records`,
        help: 'Usage records waiting in memory for the ledger file',
        registers,
        collect() {
          let n = 0
          for (const l of ledgers) n += l.health().buffered
          this.set(n)
        },
      }),
      writeFailures: new Counter({
        name: `${prefix}ledger_write_failures_total`,
        help: 'Failed writes to the usage ledger (each attempt)',
        registers,
      }),
      dropped: new Counter({
        name: `${prefix}ledger_dropped_records_total`,
        help: 'Usage records lost: the buffer was full while the ledger could not write, or they were still unwritten at shutdown',
        registers,
      }),
      written: new Counter({
        name: `${prefix}ledger_records_total`,
        help: 'Usage records written to the ledger file',
        registers,
      }),
    }
    return this.ledger
  }

  /** The text exposition for a /metrics endpoint, and its content type. */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() }
  }
}

/**
 * Changes to a labelled metric made on every request, summed in a map and added to prom-client's
 * metric when it is collected (its `get()` and every scrape collect first): prom-client hashes the
 * labels and looks the value up on each `inc`, which showed in the gateway's per-request profile.
 * Keyed by two strings (the tier, then the rest), so that a call neither joins them into one key
 * nor builds its label object: `labelsOf` builds that once per label set.
 */
class Pending<L extends string> {
  private readonly entries = new Map<string, Map<string, { labels: Record<L, string>; delta: number }>>()

  constructor(private readonly labelsOf: (first: string, second: string) => Record<L, string>) {}

  add(first: string, second: string, delta: number): void {
    let inner = this.entries.get(first)
    if (inner === undefined) {
      inner = new Map()
      this.entries.set(first, inner)
    }
    const entry = inner.get(second)
    if (entry !== undefined) entry.delta += delta
    else inner.set(second, { labels: this.labelsOf(first, second), delta })
  }

  flushTo(metric: Counter<L> | Gauge<L>): void {
    for (const inner of this.entries.values()) {
      for (const entry of inner.values()) {
        // A gauge may go down; a label set seen once stays exported (at 0), as with inc/dec.
        if (entry.delta < 0) (metric as Gauge<L>).dec(entry.labels, -entry.delta)
        else metric.inc(entry.labels, entry.delta)
      }
    }
    this.entries.clear()
  }
}
