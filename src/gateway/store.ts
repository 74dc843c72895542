import type { Logger } from 'pino'
import { BlockedKeyCache } from '../store/blocked-cache.js'
import { type FailMode, GuardedStore, type StoreHealth } from '../store/guarded.js'
import { MemoryStore } from '../store/memory.js'
import { RedisInvalidationBus } from '../store/redis/invalidation.js'
import { RedisStore } from '../store/redis/store.js'
import type { Store } from '../store/types.js'
import type { GatewayConfig, RedisStoreConfig } from './config/schema.js'
import { gatewayTiers } from './tiers.js'

/** The outage options of a Redis store with their defaults filled in. */
export interface OutagePolicy {
  timeoutMs: number
  /** For tiers that name no failMode. */
  failMode: FailMode
  instances: number
  blockedCache: { maxAgeMs: number; maxEntries: number } | false
  /** Every tier's effective failMode. */
  tiers: Record<string, FailMode>
}

export const DEFAULT_STORE_TIMEOUT_MS = 100
export const DEFAULT_FAIL_MODE: FailMode = 'closed'

/** The failed-auth counter keeps counting in-process while Redis is away. */
const AUTH_FAIL_MODE: FailMode = 'local'

/** The outage policy of a config (undefined with the memory store, which cannot fail). */
export function outagePolicy(config: GatewayConfig): OutagePolicy | undefined {
  if (config.store.type !== 'redis') return undefined
  const store: RedisStoreConfig = config.store
  const failMode = store.failMode ?? DEFAULT_FAIL_MODE
  const tiers: Record<string, FailMode> = {}
  for (const name of Object.keys(gatewayTiers(config.tiers))) {
    tiers[name] = config.tiers[name]?.failMode ?? failMode
  }
  const cache = store.blockedCache
  return {
    timeoutMs: store.timeout ?? DEFAULT_STORE_TIMEOUT_MS,
    failMode,
    instances: store.instances ?? 1,
    blockedCache:
      cache === false ? false : { maxAgeMs: cache?.maxAge ?? 1_000, maxEntries: cache?.maxEntries ?? 10_000 },
    tiers,
  }
}

/** What /readyz answers. */
export interface Readiness {
  ready: boolean
  body: Record<string, unknown>
}

/** The gateway's store and what surrounds it. */
export interface GatewayStore {
  /** The store of the HTTP core's limiters that have none of their own. */
  store: Store
  /** Each tier's own store (for Redis: a view with the tier's outage policy), and the failed-auth counter's. */
  tierStores: Record<string, Store> | undefined
  authStore: Store | undefined
  redis: RedisStore | undefined
  guard: GuardedStore | undefined
  cache: BlockedKeyCache | undefined
  policy: OutagePolicy | undefined
  /** Waits up to `waitMs` for Redis (and subscribes to invalidations); false when it did not answer. */
  connect(waitMs: number): Promise<boolean>
  readiness(): Promise<Readiness>
  /** Closes the invalidation bus, the guard and the store (not a store the caller passed in). */
  close(): Promise<void>
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
/** A pause that does not keep the process alive (for retries in the background). */
const idle = (ms: number) => new Promise((r) => setTimeout(r, ms).unref())

// ------------------------------------------------------------------ the parts, made in one place

/** The Redis store a config names: a Redis Cluster when it lists `nodes`, else the `url`. */
export function configuredRedis(store: RedisStoreConfig): RedisStore {
  return new RedisStore(store.nodes !== undefined ? { nodes: store.nodes } : { url: store.url! })
}

/**
 * Pings `store` until it answers or `waitMs` has passed, every `everyMs`: undefined once it
 * answered, else the last error.
 */
export async function reachStore(store: Store, waitMs: number, everyMs = 50): Promise<Error | undefined> {
  const deadline = Date.now() + waitMs
  for (;;) {
    try {
      await store.ping()
      return undefined
    } catch (error) {
      if (Date.now() >= deadline) return error instanceof Error ? error : new Error(String(error))
      await sleep(everyMs)
    }
  }
}

/**
 * The blocked-key cache of a config (undefined when turned off) and the bus that keeps the caches
 * of every process on `redis` in step: a block lifted here is forgotten there at once.
 */
export function blockedKeyCache(
  config: GatewayConfig,
  redis: RedisStore,
): { cache: BlockedKeyCache; bus: RedisInvalidationBus } | undefined {
  const options = outagePolicy(config)?.blockedCache
  if (options === undefined || options === false) return undefined
  const cache = new BlockedKeyCache({ maxAgeMs: options.maxAgeMs, maxEntries: options.maxEntries })
  const bus = new RedisInvalidationBus({ cache, client: redis.client, channel: `${config.prefix}invalidate` })
  return { cache, bus }
}

// ------------------------------------------------------------------ the gateway's store

/** What a store without the Redis machinery (outage policy, per-tier views, cache) has of it. */
const NO_REDIS_PARTS = {
  tierStores: undefined,
  authStore: undefined,
  redis: undefined,
  guard: undefined,
  cache: undefined,
  policy: undefined,
} as const

/** A store the caller made: used as it is, and left open. */
export function givenStore(store: Store): GatewayStore {
  return {
    store,
    ...NO_REDIS_PARTS,
    connect: async (waitMs) => (await reachStore(store, waitMs)) === undefined,
    readiness: async () => {
      let timer: NodeJS.Timeout | undefined
      try {
        await Promise.race([
          store.ping(),
          new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error('no answer within 1000 ms')), 1000)
          }),
        ])
        return { ready: true, body: { status: 'ready' } }
      } catch (error) {
        return { ready: false, body: { status: 'unavailable', error: `store: ${(error as Error).message}` } }
      } finally {
        clearTimeout(timer)
      }
    },
    close: async () => {},
  }
}

/** The store a config describes: memory, or Redis behind the outage policy and the blocked-key cache. */
export function openStore(config: GatewayConfig, logger: Logger): GatewayStore {
  const policy = outagePolicy(config)
  if (config.store.type === 'memory' || policy === undefined) {
    const maxKeys = config.store.type === 'memory' ? config.store.maxKeys : undefined
    const memory = new MemoryStore(maxKeys === undefined ? {} : { maxKeys })
    return {
      store: memory,
      ...NO_REDIS_PARTS,
      connect: async () => true,
      readiness: async () => ({ ready: true, body: { status: 'ready', store: 'memory' } }),
      close: () => memory.close(),
    }
  }
  const nodes = config.store.nodes
  const redis = configuredRedis(config.store)
  const guard = new GuardedStore({
    store: redis,
    failMode: policy.failMode,
    timeoutMs: policy.timeoutMs,
    instances: policy.instances,
    logger: logger.child({ component: 'store' }),
    name: nodes !== undefined ? 'Redis Cluster' : 'Redis',
  })
  const { cache, bus } = blockedKeyCache(config, redis) ?? {}

  const views = new Map<FailMode, Store>()
  const view = (mode: FailMode): Store => {
    let v = views.get(mode)
    if (v === undefined) {
      const guarded = guard.withFailMode(mode)
      v = cache ? cache.wrap(guarded) : guarded
      views.set(mode, v)
    }
    return v
  }
  const tierStores = Object.fromEntries(
    Object.entries(policy.tiers).map(([tier, mode]) => [tier, view(mode)]),
  )
  const modes = new Set(Object.values(policy.tiers))

  let closed = false
  /** Subscribes to invalidations, retrying in the background while Redis is away. */
  const subscribe = async (waitMs: number): Promise<void> => {
    if (!bus) return
    try {
      await bus.start(waitMs)
    } catch (error) {
      logger.warn(
        { component: 'store', err: (error as Error).message },
        'blocked-key cache: not subscribed to invalidations yet (entries expire after maxAge meanwhile); retrying',
      )
      void (async () => {
        while (!closed) {
          await idle(1_000)
          if (closed) return
          try {
            await bus.start(5_000)
            logger.info({ component: 'store' }, 'blocked-key cache: subscribed to invalidations')
            return
          } catch {
            // Redis still away: try again.
          }
        }
      })()
    }
  }

  return {
    store: view(policy.failMode),
    tierStores,
    authStore: view(AUTH_FAIL_MODE),
    redis,
    guard,
    cache,
    policy,
    connect: async (waitMs) => {
      try {
        await redis.whenReady(waitMs)
      } catch {
        void subscribe(waitMs)
        return false
      }
      await subscribe(waitMs)
      return true
    },
    readiness: async () => {
      // A ping within the deadline, counted like any call: it also tells the breaker (which
      // only turns down after several failures in a row, so the ping itself decides here).
      let ping = 'ok'
      await guard.ping().catch((error: unknown) => {
        ping = error instanceof Error ? error.message : String(error)
      })
      const store = { ...describeHealth(guard.health()), ping }
      if (ping === 'ok') return { ready: true, body: { status: 'ready', store } }
      // While Redis is down, tiers that fail open or local still serve: stay in the load balancer.
      const serving = [...modes].some((m) => m !== 'closed')
      return {
        ready: serving,
        body: { status: serving ? 'degraded' : 'unavailable', store, failModes: policy.tiers },
      }
    },
    close: async () => {
      closed = true
      await bus?.close()
      await guard.close()
    },
  }
}

function describeHealth(health: StoreHealth): Record<string, unknown> {
  const out: Record<string, unknown> = { state: health.state, since: new Date(health.since).toISOString() }
  if (health.lastError !== undefined) out.lastError = health.lastError
  return out
}
