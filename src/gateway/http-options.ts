import type { CountryLookup } from '../http/geoip.js'
import type { KeyConfig, SluiceLogger, SluiceOptions } from '../http/index.js'
import type { TierQueue } from '../http/tiers.js'
import type { BlockOptions } from '../limiter.js'
import type { SluiceMetrics } from '../metrics.js'
import type { DetectorStore } from '../store/detectors/types.js'
import type { Store } from '../store/types.js'
import { detectorsInput } from './config/detectors-schema.js'
import type { BlockConfig, GatewayConfig, TierConfig } from './config/schema.js'
import { gatewayTiers, limitFromConfig } from './tiers.js'

function blockOptions(block: BlockConfig | undefined): BlockOptions | boolean | undefined {
  if (block === undefined || typeof block === 'boolean') return block
  const out: BlockOptions = {}
  if (block.after !== undefined) out.after = block.after
  if (block.within !== undefined) out.withinMs = block.within
  if (block.durations !== undefined) out.durationsMs = block.durations
  if (block.forget !== undefined) out.forgetMs = block.forget
  return out
}

/** The key registry entries of a config (limits built with the core factories), plus any extra keys. */
export function keyConfigs(config: GatewayConfig, extra: KeyConfig[] = []): KeyConfig[] {
  const keys = config.auth.keys.map((k) => {
    const entry: KeyConfig = { hash: k.hash, tier: k.tier }
    if (k.id !== undefined) entry.id = k.id
    if (k.name !== undefined) entry.name = k.name
    if (k.user !== undefined) entry.user = k.user
    if (k.revoked !== undefined) entry.revoked = k.revoked
    if (k.limits !== undefined) {
      entry.limits = Object.fromEntries(Object.entries(k.limits).map(([n, l]) => [n, limitFromConfig(l)]))
    }
    return entry
  })
  return [...keys, ...extra]
}

/** Options of the HTTP core (identity, tiers, graduated response, headers) from the gateway config. */
export function sluiceOptions(
  config: GatewayConfig,
  deps: {
    store: Store
    /** Per tier, a store of its own (the gateway's outage policy per tier), and the failed-auth counter's. */
    tierStores?: Record<string, Store>
    authStore?: Store
    logger: SluiceLogger | false
    extraKeys?: KeyConfig[]
    /** Counts every admission (allowed, refused, unavailable) once. */
    metrics?: SluiceMetrics
    /** Where the detectors keep their state (outlives reloads). */
    detectorStore?: DetectorStore
    /** The countries of `geoip.database`, opened once at start (outlives reloads). */
    geoip?: CountryLookup
  },
): SluiceOptions {
  const { auth, graduated } = config
  const tiers = gatewayTiers(config.tiers)
  for (const [name, store] of Object.entries(deps.tierStores ?? {})) {
    const t = tiers[name]
    if (t !== undefined) t.store = store
  }
  for (const [name, tier] of Object.entries(config.tiers)) {
    const t = tiers[name]!
    if (tier.shadow !== undefined) t.shadow = tier.shadow
    if (tier.queue !== undefined) t.queue = tierQueue(tier.queue)
    const block = blockOptions(tier.block)
    if (block !== undefined) t.block = block
  }
  const options: SluiceOptions = {
    store: deps.store,
    prefix: config.prefix,
    tiers,
    keys: keyConfigs(config, deps.extraKeys),
    headers: config.headers,
    logger: deps.logger,
  }
  if (deps.metrics !== undefined) options.metrics = deps.metrics
  if (config.detectors !== undefined) {
    options.detectors = {
      ...detectorsInput(config.detectors),
      ...(deps.detectorStore !== undefined && { store: deps.detectorStore }),
      ...(config.geoip !== undefined && { geoip: deps.geoip ?? { database: config.geoip.database } }),
    }
  }
  if (auth.apiKeyHeaders !== undefined) options.apiKeyHeaders = auth.apiKeyHeaders
  if (auth.trustProxy !== undefined) options.trustProxy = auth.trustProxy
  if (auth.forwardedHeader !== undefined) options.forwardedHeader = auth.forwardedHeader
  if (auth.trustedUserHeader !== undefined) options.trustedUserHeader = auth.trustedUserHeader
  if (auth.ipv4Subnet !== undefined) options.ipv4Subnet = auth.ipv4Subnet
  if (auth.ipv6Subnet !== undefined) options.ipv6Subnet = auth.ipv6Subnet
  if (auth.failedAuth === false) {
    options.failedAuth = false
  } else if (auth.failedAuth !== undefined || deps.authStore !== undefined) {
    options.failedAuth = {
      ...(auth.failedAuth?.limit !== undefined && { limit: auth.failedAuth.limit }),
      ...(auth.failedAuth?.window !== undefined && { windowMs: auth.failedAuth.window }),
      ...(deps.authStore !== undefined && { store: deps.authStore }),
    }
  }
  if (graduated.warnAt !== undefined) options.warnAt = graduated.warnAt
  if (graduated.alertAt !== undefined) options.alertAt = graduated.alertAt
  const block = blockOptions(graduated.block)
  if (block !== undefined) options.block = block
  if (graduated.shadow !== undefined) options.shadow = graduated.shadow
  if (graduated.deny !== undefined) options.deny = graduated.deny
  if (graduated.allow !== undefined) options.allow = graduated.allow
  if (graduated.concurrencyRetryCap !== undefined)
    options.concurrencyRetryCapMs = graduated.concurrencyRetryCap
  if (graduated.maxRetryWait !== undefined) options.maxRetryWaitMs = graduated.maxRetryWait
  const hook = graduated.webhook
  if (hook !== undefined) {
    options.webhook =
      typeof hook === 'string'
        ? hook
        : {
            url: hook.url,
            ...(hook.timeout !== undefined && { timeoutMs: hook.timeout }),
            ...(hook.retries !== undefined && { retries: hook.retries }),
            ...(hook.backoff !== undefined && { backoffMs: hook.backoff }),
            ...(hook.headers !== undefined && { headers: hook.headers }),
            ...(hook.events !== undefined && { events: hook.events }),
          }
  }
  return options
}

/** A tier's `queue` of sluice.yaml as the wait options of its admissions. */
function tierQueue(queue: NonNullable<TierConfig['queue']>): TierQueue {
  const out: TierQueue = { maxWaitMs: queue.maxWait }
  if (queue.maxQueued !== undefined) out.maxQueued = queue.maxQueued
  if (queue.maxQueuedPerSubject !== undefined) out.maxQueuedPerFlow = queue.maxQueuedPerSubject
  if (queue.weight !== undefined) out.weight = queue.weight
  if (queue.lease !== undefined) out.leaseMs = queue.lease
  if (queue.priorities !== undefined) out.priorities = queue.priorities
  return out
}
