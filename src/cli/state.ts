import type { GatewayConfig } from '../gateway/config/schema.js'
import { sluiceOptions } from '../gateway/http-options.js'
import { blockedKeyCache, configuredRedis, outagePolicy, reachStore } from '../gateway/store.js'
import { Sluice } from '../http/index.js'
import { UsageError } from './io.js'

export function redactUrl(url: string): string {
  try {
    const u = new URL(url)
    if (u.password) u.password = '***'
    return u.toString()
  } catch {
    return url
  }
}

/** Where the config keeps its counts, for people (passwords hidden). */
export function describeStore(config: GatewayConfig): string {
  const store = config.store
  if (store.type !== 'redis') return 'in memory (this process only)'
  const where =
    store.nodes !== undefined
      ? `Redis Cluster ${store.nodes.map(redactUrl).join(', ')}`
      : `redis ${redactUrl(store.url!)}`
  const policy = outagePolicy(config)!
  const modes = [...new Set(Object.values(policy.tiers))]
  const failModes =
    modes.length === 1
      ? `failMode ${modes[0]}`
      : `failMode ${Object.entries(policy.tiers)
          .map(([t, m]) => `${t}=${m}`)
          .join(' ')}`
  return `${where} (deadline ${policy.timeoutMs}ms, ${failModes}, instances ${policy.instances})`
}

/**
 * A Sluice over the config's Redis store, for commands that read or change a running gateway's state.
 * With `invalidate`, what it gives back (an unblock) is also announced to the running gateways, so
 * that their blocked-key caches forget the subject at once instead of after maxAge.
 */
export async function sharedState(
  config: GatewayConfig,
  options: { invalidate?: boolean } = {},
): Promise<{ sluice: Sluice; close(): Promise<void> }> {
  if (config.store.type !== 'redis') {
    throw new UsageError(
      'this command reads the store, and the config uses the in-memory store, which lives inside the `sluice serve` process. ' +
        'Point the gateway and this command at Redis (store: { type: redis, url: … } or SLUICE_REDIS_URL).',
    )
  }
  const { nodes, url } = config.store
  const store = configuredRedis(config.store)
  const where = nodes !== undefined ? nodes.map(redactUrl).join(', ') : redactUrl(url!)
  const unreachable = await reachStore(store, 5000, 100)
  if (unreachable !== undefined) {
    await store.close()
    throw new Error(`cannot reach Redis at ${where}: ${unreachable.message}`)
  }
  // Only to announce what is given back (an unblock): its entries are never read here.
  const cached = options.invalidate ? blockedKeyCache(config, store) : undefined
  if (cached === undefined) {
    const sluice = new Sluice(sluiceOptions(config, { store, logger: false }))
    return { sluice, close: () => store.close() }
  }
  const { cache, bus } = cached
  const sluice = new Sluice(sluiceOptions(config, { store: cache.wrap(store), logger: false }))
  return {
    sluice,
    close: async () => {
      await bus.close() // publishes what is pending
      await store.close()
    },
  }
}
