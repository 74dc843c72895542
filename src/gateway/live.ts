/**
 * The parts of the gateway that `SIGHUP` replaces while it serves: the HTTP core (tiers, keys from
 * sluice.yaml, graduated response), the model routes, the prices and the upstreams. The request
 * path holds stand-ins that forward to the current part, so a call that started before a reload
 * finishes with the parts it started with (its limiter, its reservation, its upstream) and the
 * next one gets the new ones. Listening address, store, database, ledger and GeoIP database need a
 * restart.
 */

import type { Logger } from 'pino'
import { Counter } from 'prom-client'
import type { CountryLookup } from '../http/geoip.js'
import { type KeyConfig, Sluice } from '../http/index.js'
import type { SluiceMetrics } from '../metrics.js'
import type { DetectorStore } from '../store/detectors/types.js'
import type { GatewayConfig } from './config/schema.js'
import { ControlKeyRegistry } from './control-keys.js'
import type { GatewayControl } from './control-plane.js'
import { sluiceOptions } from './http-options.js'
import type { InFlightCalls } from './in-flight.js'
import { ModelTable } from './models.js'
import { PriceTable } from './prices.js'
import { usedUpstreams } from './startup.js'
import type { GatewayStore } from './store.js'
import { Upstream } from './upstream.js'

/** An object that forwards every property to the current value of `box` (methods bound to it). */
function standIn<T extends object>(box: { current: T }): T {
  let bound = new Map<PropertyKey, unknown>()
  let boundFor = box.current
  return new Proxy({} as T, {
    get(_target, prop) {
      const target = box.current
      if (target !== boundFor) {
        bound = new Map()
        boundFor = target
      }
      // A method bound once is answered without looking it up on the target again (several
      // reads per call go through here).
      let fn = bound.get(prop)
      if (fn !== undefined) return fn
      const value = Reflect.get(target, prop, target) as unknown
      if (typeof value !== 'function') return value
      fn = (value as (...args: unknown[]) => unknown).bind(target)
      bound.set(prop, fn)
      return fn
    },
    has: (_target, prop) => Reflect.has(box.current, prop),
    getPrototypeOf: () => Reflect.getPrototypeOf(box.current),
  })
}

export interface LiveDeps {
  stores: GatewayStore
  plane: GatewayControl | undefined
  logger: Logger
  /** False: the HTTP core logs nothing (the gateway's logger option was false). */
  quiet: boolean
  extraKeys: KeyConfig[]
  env: Record<string, string | undefined>
  /** The HTTP core counts its decisions here. */
  metrics: SluiceMetrics
  /** The detectors' state, kept across reloads. */
  detectorStore?: DetectorStore | undefined
  /** The GeoIP database opened at start, kept across reloads. */
  geoip?: CountryLookup | undefined
}

/** Builds the HTTP core of a config (its keys from sluice.yaml, then the database's through the cache). */
export function buildSluice(config: GatewayConfig, deps: LiveDeps): Sluice {
  const { stores, plane } = deps
  const options = sluiceOptions(config, {
    store: stores.store,
    ...(stores.tierStores !== undefined && { tierStores: stores.tierStores }),
    ...(stores.authStore !== undefined && { authStore: stores.authStore }),
    logger: deps.quiet ? false : deps.logger.child({ component: 'limits' }),
    extraKeys: deps.extraKeys,
    metrics: deps.metrics,
    ...(deps.detectorStore !== undefined && { detectorStore: deps.detectorStore }),
    ...(deps.geoip !== undefined && { geoip: deps.geoip }),
  })
  let sluice: Sluice | undefined
  if (plane !== undefined) {
    const utcOffset = config.database === false ? 0 : (config.database?.budgetUtcOffset ?? 0)
    const registry = new ControlKeyRegistry(options.keys as KeyConfig[], {
      tierExists: (tier) => sluice !== undefined && Object.hasOwn(sluice.tiers, tier),
      logger: deps.logger,
      utcOffset,
    })
    registry.attach(plane.cache)
    options.keys = registry
    const levels = plane.levels
    options.levels = (identity) => levels.levelsOf(identity, sluice!.limiterFor(identity).store)
  }
  sluice = new Sluice(options)
  return sluice
}

export class LiveParts {
  readonly sluice: Sluice
  readonly models: ModelTable
  readonly prices: PriceTable
  /** Updated in place on reload: upstreams whose config did not change are kept. */
  readonly upstreams = new Map<string, Upstream>()
  private readonly boxes: {
    sluice: { current: Sluice }
    models: { current: ModelTable }
    prices: { current: PriceTable }
  }
  private readonly upstreamConfigs = new Map<string, string>()
  private readonly retired = new Set<Upstream>()
  private readonly listeners = new Set<(sluice: Sluice) => void>()
  private reloads: Counter | undefined

  constructor(
    private config: GatewayConfig,
    sluice: Sluice,
    private readonly deps: LiveDeps & { calls: InFlightCalls },
  ) {
    this.boxes = {
      sluice: { current: sluice },
      models: { current: new ModelTable(config) },
      prices: { current: new PriceTable(config.prices) },
    }
    this.sluice = standIn(this.boxes.sluice)
    this.models = standIn(this.boxes.models)
    this.prices = standIn(this.boxes.prices)
  }

  /** The HTTP core serving new requests now. */
  get current(): Sluice {
    return this.boxes.sluice.current
  }

  /** Counts reloads on /metrics (`sluice_config_reloads_total{result}`). */
  watch(metrics: SluiceMetrics): void {
    this.reloads = new Counter({
      name: 'sluice_config_reloads_total',
      help: 'Reloads of sluice.yaml (SIGHUP), by result: applied, or failed (the old config kept).',
      labelNames: ['result'],
      registers: [metrics.registry],
    })
  }

  /** Called with each new HTTP core (to move event listeners to it). */
  onSwap(listener: (sluice: Sluice) => void): void {
    this.listeners.add(listener)
  }

  /** Starts the upstreams the config routes to (at start). */
  async startUpstreams(): Promise<void> {
    for (const name of usedUpstreams(this.config)) {
      const upstream = await Upstream.create(
        name,
        this.config.upstreams[name]!,
        this.deps.env,
        this.boxes.models.current.encodingOf,
      )
      this.upstreams.set(name, upstream)
      this.upstreamConfigs.set(name, JSON.stringify(this.config.upstreams[name]))
    }
  }

  /**
   * Applies a new config's tiers, keys, graduated response, models, prices and upstreams. Throws
   * (and changes nothing) when the config cannot be built; parts needing a restart are named in
   * the answer.
   */
  async reload(load: () => GatewayConfig): Promise<{ needsRestart: string[] }> {
    try {
      const next = load()
      const sluice = buildSluice(next, this.deps)
      const models = new ModelTable(next)
      const prices = new PriceTable(next.prices)
      const started = new Map<string, Upstream>()
      try {
        for (const name of usedUpstreams(next)) {
          const text = JSON.stringify(next.upstreams[name])
          if (this.upstreamConfigs.get(name) === text && this.upstreams.has(name)) continue
          started.set(
            name,
            await Upstream.create(name, next.upstreams[name]!, this.deps.env, models.encodingOf),
          )
        }
      } catch (error) {
        for (const upstream of started.values()) await upstream.close().catch(() => {})
        await sluice.close().catch(() => {})
        throw error
      }
      const old = this.boxes.sluice.current
      this.boxes.sluice.current = sluice
      this.boxes.models.current = models
      this.boxes.prices.current = prices
      const used = new Set(usedUpstreams(next))
      for (const [name, upstream] of [...this.upstreams]) {
        if (!used.has(name) || started.has(name)) {
          this.upstreams.delete(name)
          this.upstreamConfigs.delete(name)
          this.retire(upstream)
        }
      }
      for (const [name, upstream] of started) {
        this.upstreams.set(name, upstream)
        this.upstreamConfigs.set(name, JSON.stringify(next.upstreams[name]))
      }
      for (const listener of this.listeners) listener(sluice)
      // Webhooks the old core still has to send go out; its limiters stay with the calls using them.
      void old.close().catch(() => {})
      const needsRestart = restartOnly(this.config, next)
      this.config = next
      this.reloads?.inc({ result: 'applied' })
      return { needsRestart }
    } catch (error) {
      this.reloads?.inc({ result: 'failed' })
      throw error
    }
  }

  /** Closes the upstreams (current and retired). */
  async close(): Promise<void> {
    await Promise.all([...this.upstreams.values(), ...this.retired].map((u) => u.close()))
  }

  /** An upstream no longer routed to is closed once no call is in flight (or at shutdown). */
  private retire(upstream: Upstream): void {
    this.retired.add(upstream)
    void this.deps.calls.idle().then(() => {
      if (!this.retired.delete(upstream)) return
      void upstream.close().catch(() => {})
    })
  }
}

const RESTART_ONLY = [
  'host',
  'port',
  'store',
  'prefix',
  'database',
  'ledger',
  'snapshot',
  'metrics',
  'bodyLimit',
  'uploads',
  'shutdown',
  'log',
  'admin',
  'geoip',
  'deployments',
  'fallbacks',
] as const

function restartOnly(before: GatewayConfig, after: GatewayConfig): string[] {
  return RESTART_ONLY.filter((k) => JSON.stringify(before[k]) !== JSON.stringify(after[k]))
}
