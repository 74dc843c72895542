// First: before the rest loads, while nextTick's maps are still those it remembers (tick-maps.ts).
import './tick-maps.js'
import type { AddressInfo } from 'node:net'
import type { DestinationStream, Logger } from 'pino'
import { pino } from 'pino'
import type { LedgerEntry } from '../control/ledger-rows.js'
import { SluiceInputError } from '../core/errors.js'
import { Sluice } from '../http/index.js'
import { SluiceMetrics } from '../metrics.js'
import type { BlockedKeyCache } from '../store/blocked-cache.js'
import { StoreUnavailableError } from '../store/errors.js'
import type { GuardedStore } from '../store/guarded.js'
import { MemoryStore } from '../store/memory.js'
import { RedisStore } from '../store/redis/store.js'
import type { Store } from '../store/types.js'
import { Accounting, type Charge, type Settlement } from './accounting.js'
import { ConfigError, parseConfig } from './config/load.js'
import type { GatewayConfig, GatewayConfigInput } from './config/schema.js'
import {
  connectEvents,
  type GatewayControl,
  mountControl,
  openGatewayControl,
  refusalRow,
  settledRow,
} from './control-plane.js'
import { openDeployments } from './deployments/open.js'
import type { Deployments } from './deployments/router.js'
import { checkGeoIp, connectDetections, detectorStoreFor, openGeoIpFor, whoOf } from './detections.js'
import { sluiceOptions } from './http-options.js'
import { InFlightCalls } from './in-flight.js'
import { Ledger, LedgerPathError } from './ledger.js'
import { reportLedger } from './ledger-report.js'
import { buildSluice, LiveParts } from './live.js'
import { createGatewayLogger } from './logger.js'
import type { MockUpstream } from './mock/server.js'
import { type Persistence, startPersistence } from './persistence.js'
import { LEDGER_UNAVAILABLE_BODY, readinessWithLedger, refusesCalls } from './readiness.js'
import { ledgerReplay } from './replay.js'
import { buildServer } from './server.js'
import { demoKeyFor, startupWarnings } from './startup.js'
import { type GatewayStore, givenStore, type OutagePolicy, openStore } from './store.js'
import type { Upstream } from './upstream.js'

export interface GatewayOptions {
  /** Environment for upstream API keys (`apiKeyEnv`) and SLUICE_DEMO_KEY (default process.env). */
  env?: Record<string, string | undefined>
  /** A pino logger, or false for none (default: pino at config.log.level, keys redacted). */
  logger?: Logger | false
  /** Where the default logger writes its JSON lines (default: stderr). */
  logDestination?: DestinationStream
  /** Use this store instead of the one the config describes, as it is (the caller closes it). */
  store?: Store
  /** Count in this registry (default: a new SluiceMetrics, served on /metrics). */
  metrics?: SluiceMetrics
  /** Serve the dashboard from this build folder (default: the package's build, dist/dashboard). */
  dashboardRoot?: string
}

export type { GatewayControl } from './control-plane.js'

export interface CloseOptions {
  /** How long calls in flight may take to finish before they are cut (default: config.shutdown.deadline). */
  deadlineMs?: number
}

export interface Gateway {
  /** http://host:port of the gateway; OpenAI clients use `${url}/v1` as their base URL. */
  url: string
  port: number
  config: GatewayConfig
  sluice: Sluice
  /** The store the limiters use (with Redis: each tier routed through its outage policy). */
  store: Store
  /** With Redis: the deadline, circuit breaker and outage policy around it. */
  guard: GuardedStore | undefined
  /** With Redis: denials answered without a Redis call (undefined when turned off). */
  blockedCache: BlockedKeyCache | undefined
  /** With Redis: the outage options with their defaults. */
  outagePolicy: OutagePolicy | undefined
  metrics: SluiceMetrics
  accounting: Accounting
  ledger: Ledger | undefined
  /** The control plane (database keys, ledger rows, admin API), when `database` is configured. */
  control: GatewayControl | undefined
  upstreams: ReadonlyMap<string, Upstream>
  /** The deployments of models configured with `deployments` (undefined: none). */
  deployments: Deployments | undefined
  /** The built-in mock upstream, when the config routes anything to it. */
  mock: MockUpstream | undefined
  /** The demo key made at start-up when no key is configured (service tier), else undefined. */
  demoKey: string | undefined
  /** The demo key came from SLUICE_DEMO_KEY (it outlives this process), rather than made at random. */
  demoKeyFromEnv: boolean
  /** What start-up found that works but probably not as meant (also logged at warn). */
  warnings: string[]
  /** Calls being served right now. */
  readonly inFlight: number
  /**
   * Applies a new config's tiers, keys, graduated response, models, prices and upstreams without
   * dropping calls in flight (SIGHUP). A config that cannot be read (when `input` is a loader) or
   * built throws, changes nothing and counts in `sluice_config_reloads_total{result="failed"}`;
   * the answer names changed settings that need a restart (listen address, store, database…).
   */
  reload(
    input: GatewayConfigInput | GatewayConfig | (() => GatewayConfigInput | GatewayConfig),
  ): Promise<{ needsRestart: string[] }>
  /**
   * Graceful shutdown: stops accepting connections, lets calls in flight finish for up to the
   * deadline, then cuts them (each settled with what it used), settles every open reservation
   * exactly once, flushes the ledger and webhooks, and closes upstreams and the store. Calling it
   * again returns the same promise; a shorter `deadlineMs` then cuts sooner.
   */
  close(options?: CloseOptions): Promise<void>
}

const STORE_CONNECT_MS = 5_000
/** After cutting connections, how long calls get to notice and settle before they are settled for them. */
const CUT_GRACE_MS = 5_000

/** How long one step of closing (upstreams, ledger, webhooks, store) may take before shutdown goes on. */
const CLEANUP_STEP_MS = 5_000

/**
 * Resolves true when `promise` settles within `ms`, false after `ms` or as soon as `cut` resolves
 * (leaving no timer behind).
 */
function within(promise: Promise<unknown>, ms: number, cut?: Promise<void>): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms)
  })
  const settled = promise.then(
    () => true,
    () => true,
  )
  const racers = cut === undefined ? [settled, timeout] : [settled, timeout, cut.then(() => false)]
  return Promise.race(racers).finally(() => clearTimeout(timer))
}

/**
 * Checks what the schema cannot: that the HTTP core accepts the tiers, keys and lists.
 * Throws ConfigError.
 */
export function checkConfig(config: GatewayConfig): void {
  const store = new MemoryStore({ sweepIntervalMs: 3_600_000 })
  try {
    const geoip = checkGeoIp(config)
    new Sluice(sluiceOptions(config, { store, logger: false, ...(geoip !== undefined && { geoip }) }))
  } catch (error) {
    if (error instanceof SluiceInputError) throw new ConfigError([error.message])
    throw error
  } finally {
    void store.close()
  }
}

/**
 * Starts `sluice serve` in this process: validates the config (a sluice.yaml object, partial is
 * fine), opens the store and the ledger, starts the upstreams (the mock on a free port) and listens.
 */
export async function startGateway(
  input: GatewayConfigInput | GatewayConfig = {},
  options: GatewayOptions = {},
): Promise<Gateway> {
  const env = options.env ?? process.env
  const config = parseConfig(input)
  checkConfig(config)
  const demo = demoKeyFor(config, env)
  const warnings = startupWarnings(config, env)
  const logger =
    options.logger === false
      ? pino({ level: 'silent' })
      : (options.logger ??
        createGatewayLogger(config, {
          ...(options.logDestination !== undefined && { destination: options.logDestination }),
          secrets: demo ? [demo.key] : [],
        }))
  // Read once, before anything opens: a database file that cannot be used is one clear line.
  const geoip = openGeoIpFor(config)
  // The database first: a start-up failure there is one clear line, with nothing else to undo.
  const plane =
    config.database === undefined || config.database === false
      ? undefined
      : await openGatewayControl(config.database, logger, {
          prefix: config.prefix,
          // The levels of a request share a hash slot on a Redis Cluster (docs/admin.md).
          clustered:
            options.store === undefined && config.store.type === 'redis' && config.store.nodes !== undefined,
        })
  const stores: GatewayStore = options.store ? givenStore(options.store) : openStore(config, logger)
  const store = stores.store
  const metrics = options.metrics ?? new SluiceMetrics({ processMetrics: config.metrics.process })
  if (stores.guard) metrics.watchStore(stores.guard)
  if (stores.cache) metrics.watchCache(stores.cache)
  // The gateway admits through the HTTP core's admit(), which counts every decision once.
  const calls = new InFlightCalls()
  const liveDeps = {
    stores,
    plane,
    logger,
    quiet: options.logger === false,
    extraKeys: demo ? [demo.entry] : [],
    env,
    calls,
    metrics,
    detectorStore: detectorStoreFor(config, stores),
    geoip,
  }
  // Tiers, keys, models, prices and upstreams: replaced by reload() (SIGHUP) while serving.
  const live = new LiveParts(config, buildSluice(config, liveDeps), liveDeps)
  live.watch(metrics)
  const { sluice, models, upstreams } = live
  const ledger =
    config.ledger.path === false
      ? undefined
      : new Ledger({
          path: config.ledger.path,
          maxSize: config.ledger.maxSize,
          keep: config.ledger.keep,
          bufferBytes: config.ledger.buffer,
        })
  if (ledger) {
    metrics.watchLedger(ledger)
    reportLedger(ledger, config, logger)
  }
  const accounting = new Accounting({
    prices: live.prices,
    ledger,
    onUpstreamError: config.accounting.onUpstreamError,
    onSettleError: (error, charge) => {
      // During an outage a fail-closed tier cannot settle: the store logs the outage once, not per call.
      if (error instanceof StoreUnavailableError) return
      logger.error({ err: error, subject: charge.info.subject }, 'settling a reservation failed')
    },
    onSettled: (charge, settlement, end) => {
      if (plane !== undefined) recordSettled(plane, charge, settlement, end.status, logger)
      const detectors = live.current.detectors
      // The settlement is the cost (its tokens and usd); who is kept from the call before.
      if (detectors !== undefined && charge.reservation !== undefined && !settlement.refunded) {
        detectors.record(whoOf(charge.info.subject, charge.info.tier), settlement, charge.decision)
      }
      const routing = charge.info.routing
      if (routing !== undefined && !settlement.refunded) {
        deploymentMetrics?.tokens.inc({ deployment: routing.deployment.name }, settlement.tokens)
      }
      if (charge.limited) {
        metrics.recordCharge(charge.info.tier, { tokens: settlement.tokens, usd: settlement.usd })
      }
      // The fields are gathered only when they will be written (a call's last step, every call).
      if (logger.isLevelEnabled('debug')) {
        logger.debug(
          {
            subject: charge.info.subject,
            tier: charge.info.tier,
            model: charge.info.model,
            route: charge.info.route,
            outcome: settlement.outcome,
            tokens: settlement.tokens,
            usd: settlement.usd,
            fallback: charge.decision?.fallback,
          },
          'call settled',
        )
      }
    },
  })
  const routed = openDeployments(
    config,
    options.store instanceof RedisStore ? options.store : stores.redis,
    metrics.registry,
  )
  const deployments = routed?.deployments
  const deploymentMetrics = routed?.metrics
  const lifecycle = { closing: false }
  let persistence: Persistence | undefined

  /** Runs one shutdown step; one that fails or hangs is logged and left behind, never waited on forever. */
  const step = async (name: string, run: () => Promise<unknown>, ms = CLEANUP_STEP_MS) => {
    const finished = await within(
      run().catch((error: unknown) => logger.error({ err: error }, `shutdown: ${name} failed`)),
      ms,
    )
    if (!finished) logger.warn(`shutdown: ${name} did not finish within ${ms}ms; going on without it`)
  }
  const cleanup = async () => {
    await step('closing the upstreams', () => live.close())
    await step('writing the ledger', async () => ledger?.close())
    await step('delivering webhooks', () => live.current.close())
    if (plane !== undefined) await step('writing the control database', () => plane.close(), 15_000)
    if (persistence !== undefined) await step('writing the snapshot', () => persistence!.close())
    await step('closing the store', () => stores.close())
  }

  try {
    if (ledger) await openLedger(ledger)
    for (const warning of warnings) logger.warn(warning)
    if (!(await stores.connect(STORE_CONNECT_MS))) {
      logger.warn(
        { component: 'store' },
        stores.guard
          ? 'Redis does not answer yet: tiers answer by their failMode until it does (see /readyz)'
          : 'the store does not answer yet; requests are refused with 503 until it does (see /readyz)',
      )
    }
    if (config.snapshot && options.store === undefined) {
      persistence = await startPersistence({
        store,
        path: config.snapshot.path,
        intervalMs: config.snapshot.interval,
        replay: plane && ledgerReplay(plane, sluice, logger),
        logger,
      })
    }
    await live.startUpstreams()
    const onFailure = config.ledger.onFailure
    const app = buildServer({
      config,
      sluice,
      // /readyz also tells whether the ledger can record calls.
      store: { ...stores, readiness: readinessWithLedger(stores, ledger, onFailure) },
      accounting,
      models,
      upstreams,
      logger,
      metrics,
      calls,
      lifecycle,
      deployments,
      deploymentMetrics,
    })
    if (ledger && onFailure === 'refuse') {
      app.addHook('onRequest', async (request, reply) => {
        if (!refusesCalls(ledger, onFailure) || !request.url.startsWith('/v1/')) return
        await reply
          .code(503)
          .headers({ 'retry-after': '5', 'retry-after-ms': '5000' })
          .send(LEDGER_UNAVAILABLE_BODY)
      })
    }
    if (plane !== undefined) {
      if (plane.ledger) {
        app.addHook('onResponse', async (request, reply) => {
          if (!request.url.startsWith('/v1/')) return
          const row = refusalRow(request, reply)
          if (row !== undefined) appendRow(plane, row, logger)
        })
      }
      await mountControl(app, plane, {
        config,
        env,
        sluice,
        guard: stores.guard,
        storeStatus: async () => (await stores.readiness()).body as Record<string, unknown>,
        dashboardRoot: options.dashboardRoot,
      })
      let offEvents = connectEvents(plane, live.current)
      let offDetections = connectDetections(plane, live.current, logger)
      live.onSwap((next) => {
        offEvents()
        offEvents = connectEvents(plane, next)
        offDetections()
        offDetections = connectDetections(plane, next, logger)
      })
    }
    // Fastify logs "Server listening at …" at info: the CLI prints its banner instead, so that
    // no JSON line comes before it.
    const level = app.log.level
    if (logger.isLevelEnabled('info')) app.log.level = 'warn'
    try {
      await app.listen({ port: config.port, host: config.host })
    } finally {
      app.log.level = level
    }
    const address = app.server.address() as AddressInfo
    const host = address.address.includes(':') ? `[${address.address}]` : address.address

    let closing: Promise<void> | undefined
    let cutNow: (() => void) | undefined
    const cutRequested = new Promise<void>((resolve) => {
      cutNow = resolve
    })
    const shutdown = async (deadlineMs: number) => {
      lifecycle.closing = true
      logger.info({ inFlight: calls.size, deadlineMs }, 'shutting down: no new connections, draining calls')
      // Stops listening at once; closes idle keep-alive connections; resolves when the last one ends.
      const serverClosed = app.close()
      const drained = await within(calls.idle(), deadlineMs, cutRequested)
      if (!drained) {
        logger.warn({ inFlight: calls.size }, 'shutdown deadline reached: cutting the calls still in flight')
        // Each cut call sees its client leave: it aborts upstream and settles what it used so far.
        app.server.closeAllConnections()
        await within(calls.idle(), CUT_GRACE_MS)
      }
      // Connections whose call ended are idle now (a response finished is fully written).
      app.server.closeIdleConnections()
      await within(serverClosed, CUT_GRACE_MS, cutRequested)
      app.server.closeAllConnections()
      await step('closing the server', () => serverClosed, CUT_GRACE_MS)
      // Anything still open (a call stuck past the grace) is settled here, once, with what it saw.
      await step('settling open reservations', () => accounting.settleAll())
      await cleanup()
      logger.info('stopped')
      logger.flush?.()
    }
    return {
      url: `http://${host}:${address.port}`,
      port: address.port,
      config,
      sluice,
      store,
      guard: stores.guard,
      blockedCache: stores.cache,
      outagePolicy: stores.policy,
      metrics,
      accounting,
      ledger,
      control: plane,
      upstreams,
      deployments,
      mock: [...upstreams.values()].find((u) => u.mock !== undefined)?.mock,
      demoKey: demo?.key,
      demoKeyFromEnv: demo?.fromEnv ?? false,
      warnings,
      get inFlight() {
        return calls.size
      },
      reload: (next) =>
        live.reload(() => {
          const parsed = parseConfig(typeof next === 'function' ? next() : next)
          checkConfig(parsed)
          return parsed
        }),
      close: (closeOptions: CloseOptions = {}) => {
        const deadlineMs = closeOptions.deadlineMs ?? config.shutdown.deadline
        if (closing === undefined) closing = shutdown(deadlineMs)
        else if (deadlineMs === 0) cutNow?.()
        return closing
      },
    }
  } catch (error) {
    await cleanup()
    throw error
  }
}

/** A settled call's ledger row and the time the gateway added to it (never throws into settling). */
function recordSettled(
  plane: GatewayControl,
  charge: Charge,
  settlement: Settlement,
  status: number,
  logger: Logger,
): void {
  const trace = charge.info.trace
  if (trace?.upstreamAt !== undefined) plane.latency.record(trace.upstreamAt - trace.startedAt)
  if (plane.ledger) appendRow(plane, settledRow(charge, settlement, status), logger)
}

function appendRow(plane: GatewayControl, row: LedgerEntry, logger: Logger): void {
  try {
    plane.control.ledger.append(row)
  } catch (error) {
    logger.error({ err: error }, 'ledger row refused')
  }
}

/** Opens the ledger's file before listening: a path that cannot be written is a start-up error. */
async function openLedger(ledger: Ledger): Promise<void> {
  try {
    await ledger.open()
  } catch (error) {
    if (error instanceof LedgerPathError) {
      throw new ConfigError([
        `ledger.path: ${error.message} (give a writable file, or turn the ledger off with ledger.path: false / SLUICE_LEDGER=off)`,
      ])
    }
    throw error
  }
}

export { ConfigError, loadConfig, parseConfig } from './config/load.js'
export type { GatewayConfig, GatewayConfigInput } from './config/schema.js'
export { type LedgerRecord, readLedger, summarize, type UsageRow } from './ledger.js'
export { createGatewayLogger } from './logger.js'
export { type MockUpstream, type MockUpstreamOptions, startMockUpstream } from './mock/server.js'
export { FALLBACK_HEADER } from './server.js'
export type { OutagePolicy } from './store.js'
