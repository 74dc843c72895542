/**
 * The control plane inside `sluice serve`: the database (keys, teams, budgets, ledger, audit), the
 * key cache the identity step reads, one ledger row per request, the admin API and dashboard at
 * /admin/v1 and /dashboard, and the feeds the dashboard reads (events, latency). See docs/admin.md.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Logger } from 'pino'
import { adminAuthFrom } from '../control/admin/config.js'
import { adminConsole } from '../control/admin/console.js'
import { connectSluiceEvents, connectStoreGuard } from '../control/admin/event-sources.js'
import { AdminEventFeed } from '../control/admin/events.js'
import { LatencyRecorder } from '../control/admin/latency.js'
import { type Control, openControl } from '../control/control.js'
import { DEFAULT_SQLITE_PATH } from '../control/db.js'
import { ControlInputError, NotFoundError } from '../control/errors.js'
import type { KeyCache } from '../control/key-cache.js'
import type { LedgerEntry } from '../control/ledger-rows.js'
import { MemoryKeyRegistry, type Sluice } from '../http/index.js'
import type { Decision } from '../limiter.js'
import type { GuardedStore } from '../store/guarded.js'
import type { Charge, Settlement } from './accounting.js'
import { ConfigError } from './config/load.js'
import type { GatewayConfig } from './config/schema.js'
import { ControlKeyRegistry } from './control-keys.js'
import { ControlLevels } from './control-levels.js'
import { DIALECTS } from './dialects/index.js'
import { peekTrace, type RequestTrace } from './trace.js'

export type DatabaseConfig = Exclude<GatewayConfig['database'], false | undefined>

export interface GatewayControl {
  readonly control: Control
  readonly cache: KeyCache
  readonly events: AdminEventFeed
  readonly latency: LatencyRecorder
  /** Team and end-user levels decided with a database key's own limits. */
  readonly levels: ControlLevels
  /** Writes one ledger row per request (database.ledger). */
  readonly ledger: boolean
  close(): Promise<void>
}

/** Opens (and migrates) the database; a failure is a ConfigError with one clear line. */
export async function openGatewayControl(
  database: DatabaseConfig,
  logger: Logger,
  store: { prefix?: string; clustered?: boolean } = {},
): Promise<GatewayControl> {
  const log = logger.child({ component: 'control' })
  const url = database.url ?? DEFAULT_SQLITE_PATH
  let control: Control
  try {
    control = await openControl({
      url,
      migrate: database.migrate,
      onError: (error, where) => log.error({ err: error, where }, `control plane: ${where} failed`),
      changes: {
        onStateChange: (state, error) => {
          if (state === 'down') log.error({ err: error }, 'control plane: the change feed is down')
          else log.info('control plane: the change feed is up')
        },
      },
    })
  } catch (error) {
    throw new ConfigError([`database: cannot open ${describeUrl(url)}: ${oneLine(error)}`])
  }
  const cache = control.createKeyCache({ ttlMs: database.keyTtl, refreshInBackground: true })
  await cache
    .warm()
    .catch((error: unknown) => log.warn({ err: error }, 'control plane: loading key ids failed'))
  const levels = new ControlLevels({
    control,
    prefix: store.prefix,
    clustered: store.clustered === true,
    utcOffset: database.budgetUtcOffset,
    logger: log,
  })
  const events = new AdminEventFeed()
  const latency = new LatencyRecorder()
  let pruning: NodeJS.Timeout | undefined
  if (database.retention > 0) {
    const prune = async () => {
      const before = Date.now() - database.retention
      for (let i = 0; i < 100; i++) {
        const { more } = await control.pruneLedger({ before })
        if (!more) break
      }
      await control.pruneChanges()
    }
    pruning = setInterval(() => {
      prune().catch((error: unknown) => log.error({ err: error }, 'control plane: ledger retention failed'))
    }, 3_600_000)
    pruning.unref()
    setTimeout(() => prune().catch(() => {}), 10_000).unref()
  }
  return {
    control,
    cache,
    events,
    latency,
    levels,
    ledger: database.ledger,
    async close() {
      clearInterval(pruning)
      levels.close()
      await control.close()
    },
  }
}

/** Alerts, blocks and spent budgets of an HTTP core into the events feed; returns the disconnect. */
export function connectEvents(plane: GatewayControl, sluice: Sluice): () => void {
  return connectSluiceEvents(plane.events, sluice, {
    isBudget: (tier, limit) => {
      const limiter = sluice.tierLimiter(tier)
      return limiter.definitions[limiter.names.indexOf(limit)]?.unit === 'usd'
    },
  })
}

/** Mounts /admin/v1 and /dashboard (404 without an admin token, never open). */
export async function mountControl(
  // biome-ignore lint/suspicious/noExplicitAny: the gateway's app has a pino Logger type, the plugin any logger
  app: FastifyInstance<any, any, any, any>,
  plane: GatewayControl,
  deps: {
    config: GatewayConfig
    env: Record<string, string | undefined>
    /** The HTTP core serving now (a stand-in that follows reloads). */
    sluice: Sluice
    guard: GuardedStore | undefined
    storeStatus: () => Promise<Record<string, unknown>>
    /** The dashboard's build folder (default: the package's). */
    dashboardRoot?: string | undefined
  },
): Promise<() => void> {
  const { sluice } = deps
  const offGuard = deps.guard ? connectStoreGuard(plane.events, deps.guard, { name: 'Redis' }) : () => {}
  await app.register(adminConsole, {
    control: plane.control,
    auth: adminAuthFrom(deps.env, deps.config.admin),
    tiers: (tier) => Object.hasOwn(sluice.tiers, tier),
    tierNames: () => Object.keys(sluice.tiers),
    // The keys of the file as the core serving now has them (a reload changes them).
    configKeys: () => (sluice.keys instanceof MemoryKeyRegistry ? sluice.keys.records() : []),
    subjects: { inspect: (s) => inspectSubject(plane.control, sluice, s), unblock: (s) => sluice.unblock(s) },
    storeStatus: deps.storeStatus,
    events: plane.events,
    latency: () => plane.latency.snapshot(),
    queues: () => sluice.queues(),
    detections: () => sluice.detectors?.store,
    clientIp: (request) => {
      const forwarded = sluice.ip.trustsProxies ? request.headers[sluice.ip.header] : undefined
      const client = sluice.ip.resolve(
        request.raw.socket.remoteAddress,
        Array.isArray(forwarded) ? forwarded.join(', ') : forwarded,
      )
      return client?.ip ?? request.raw.socket.remoteAddress ?? 'unknown'
    },
    ...(deps.dashboardRoot !== undefined && { dashboard: { root: deps.dashboardRoot } }),
  })
  return offGuard
}

/**
 * A subject's live state for the admin API and the dashboard. A database key is shown as its calls
 * are charged: in its own tier only, with its own limit overrides merged over the tier's (the
 * limiter the gateway uses for it); any other subject in every tier that counts its kind.
 */
export async function inspectSubject(
  control: Control,
  sluice: Sluice,
  subject: string,
): Promise<Record<string, Decision>> {
  if (!subject.startsWith('key:')) return sluice.inspect(subject)
  const id = subject.slice('key:'.length)
  let info: Awaited<ReturnType<Control['keys']['get']>>
  try {
    info = await control.keys.get(id)
  } catch (error) {
    // Not a database key (a key of sluice.yaml, or no key at all): as the HTTP core sees it.
    if (error instanceof NotFoundError || error instanceof ControlInputError) return sluice.inspect(subject)
    throw error
  }
  const tier = sluice.tiers[info.tier]
  if (tier === undefined || tier.scope !== 'key') return {}
  // The record the request path builds (overrides and budgets), so the limiter is the one charged.
  const key = sluice.keys instanceof ControlKeyRegistry ? sluice.keys.recordOf(info) : undefined
  if (key === undefined) return {}
  const limiter = sluice.limiterFor({
    kind: 'key',
    subject,
    tier: info.tier,
    scope: 'key',
    ip: undefined,
    ipGroup: undefined,
    keyId: id,
    key,
  })
  return { [info.tier]: await limiter.peek(subject, { requests: 0 }) }
}

const ROUTE_KINDS = new Map<string, string>(DIALECTS.flatMap((d) => d.routes).map((r) => [r.url, r.kind]))

function who(trace: RequestTrace | undefined): Partial<LedgerEntry> {
  const identity = trace?.identification?.identity
  if (identity === undefined) return {}
  const row: Partial<LedgerEntry> = { tier: identity.tier, subject: identity.subject }
  if (identity.keyId !== undefined) row.keyId = identity.keyId
  if (identity.userId !== undefined) row.user = identity.userId
  if (identity.key?.team !== undefined) row.team = identity.key.team
  return row
}

/** The ledger row of a call that was admitted and settled. */
export function settledRow(charge: Charge, settlement: Settlement, status: number): LedgerEntry {
  const { info } = charge
  const trace = info.trace
  const row: LedgerEntry = {
    ...who(trace),
    tier: info.tier,
    subject: info.subject,
    model: info.model,
    route: info.route,
    stream: info.stream,
    status,
    outcome: settlement.outcome,
    limited: charge.limited,
    source: settlement.source,
    promptTokens: settlement.promptTokens,
    cachedTokens: settlement.cachedTokens,
    cacheWriteTokens: settlement.cacheWriteTokens,
    cacheWrite1hTokens: settlement.cacheWrite1hTokens,
    completionTokens: settlement.completionTokens,
    reasoningTokens: settlement.reasoningTokens,
    tokens: settlement.tokens,
    usd: settlement.usd,
    usdInput: settlement.inputUsd,
    usdCached: settlement.cachedUsd,
    usdCacheWrite: settlement.cacheWriteUsd,
    usdOutput: settlement.outputUsd,
  }
  const fallback = charge.decision?.fallback
  if (fallback !== undefined) row.fallback = fallback
  const waited = charge.decision?.waitedMs
  if (waited !== undefined) row.queueMs = waited
  const routing = info.routing
  if (routing !== undefined) {
    row.deployment = routing.deployment.name
    row.upstream = routing.deployment.upstream
    // The deployments that failed the call before the one that served it.
    if (routing.failed.length > 0) row.reason = `moved from ${routing.failed.join(', ')}`
  }
  if (trace !== undefined) row.latencyMs = Math.round(performance.now() - trace.startedAt)
  return row
}

function outcomeOf(status: number, trace: RequestTrace | undefined): { outcome: string; reason?: string } {
  const refusal = trace?.identification?.refusal
  if (status === 401) return { outcome: 'unauthenticated', reason: refusal?.reason ?? 'missing_api_key' }
  if (status === 403) return { outcome: 'denied', reason: refusal?.reason ?? 'deny_list' }
  if (status === 429) {
    const decision = trace?.decision
    if (decision?.blocked) return { outcome: 'blocked', reason: 'blocked' }
    if (decision?.deniedBy !== undefined) return { outcome: 'rate_limited', reason: decision.deniedBy }
    return { outcome: 'rate_limited', reason: refusal?.reason ?? 'too_many_uploads' }
  }
  if (status === 503) return { outcome: 'unavailable' }
  if (status >= 500) return { outcome: 'upstream_error' }
  return { outcome: 'invalid', reason: `http_${status}` }
}

/**
 * The row of a request that never became a charged call (401, 403, 429, 400, 503…): written when
 * its answer is sent. Admitted calls are written by accounting when they settle.
 */
export function refusalRow(request: FastifyRequest, reply: FastifyReply): LedgerEntry | undefined {
  const trace = peekTrace(request)
  if (trace?.charged) return undefined
  const path = request.url.split('?', 1)[0]!
  const status = reply.statusCode
  const row: LedgerEntry = {
    ...who(trace),
    route: ROUTE_KINDS.get(path) ?? path.slice(0, 100),
    status,
    ...outcomeOf(status, trace),
    limited: false,
  }
  row.requestId = String(request.id)
  // A refusal after waiting in a queue (its wait ran out): how long it waited.
  const waited = trace?.decision?.waitedMs
  if (waited !== undefined) row.queueMs = waited
  if (trace !== undefined) row.latencyMs = Math.round(performance.now() - trace.startedAt)
  return row
}

function describeUrl(url: string): string {
  try {
    if (/^postgres(ql)?:\/\//i.test(url)) {
      const parsed = new URL(url)
      if (parsed.password !== '') parsed.password = '***'
      return parsed.toString()
    }
  } catch {
    return 'the database URL'
  }
  return url
}

function oneLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error)
  const code = (error as { code?: string }).code
  const first = message.split('\n')[0]!.trim() || (code ?? 'unknown error')
  return code !== undefined && !first.includes(code) ? `${first} (${code})` : first
}
