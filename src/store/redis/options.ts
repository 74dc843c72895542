import type { ClusterOptions, RedisOptions } from 'ioredis'

/** Reconnect fast (50, 100, 150, 200, 200 … ms) so that decisions are verified again soon after an outage. */
const reconnectDelay = (attempt: number) => Math.min(attempt * 50, 200)

/**
 * ioredis options for a client a limiter can rely on: a command is never queued while the
 * connection is down (it fails at once and the outage policy answers), commands in flight when
 * the connection drops fail instead of being sent again after reconnecting (a charge must not be
 * applied twice, nor long after its request was answered), and reconnection is quick.
 */
export function redisClientOptions(overrides: RedisOptions = {}): RedisOptions {
  return {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    retryStrategy: reconnectDelay,
    connectTimeout: 2_000,
    ...overrides,
  }
}

/**
 * The same for Redis Cluster: node connections reconnect quickly, a command to a node that is
 * down fails at once, and CLUSTERDOWN is not retried behind the caller's back.
 */
export function clusterClientOptions(overrides: ClusterOptions = {}): ClusterOptions {
  return {
    enableOfflineQueue: false,
    clusterRetryStrategy: reconnectDelay,
    clusterNodeRetryStrategy: reconnectDelay,
    retryDelayOnClusterDown: 0,
    slotsRefreshTimeout: 1_000,
    ...overrides,
    redisOptions: {
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      connectTimeout: 2_000,
      ...overrides.redisOptions,
    },
  }
}

/** What nodeRedisClientOptions() sets (node-redis' own option names). */
export interface NodeRedisReliableOptions {
  disableOfflineQueue: boolean
  socket: { connectTimeout: number; reconnectStrategy: (retries: number) => number }
}

/**
 * The same for the official `redis` package (node-redis): commands are not queued while the
 * connection is down, and reconnection is quick. Spread into `createClient({ url, ... })`, or
 * pass as a cluster's `defaults`. `overrides` win, and their `socket` is merged.
 */
export function nodeRedisClientOptions<T extends { socket?: object }>(
  overrides?: T,
): NodeRedisReliableOptions & T {
  // node-redis counts retries from 0.
  const reconnectStrategy = (retries: number) => reconnectDelay(retries + 1)
  const socket = { connectTimeout: 2_000, reconnectStrategy, ...overrides?.socket }
  return { disableOfflineQueue: true, ...overrides, socket } as NodeRedisReliableOptions & T
}
