/**
 * What RedisStore and RedisInvalidationBus need of a Redis client, whichever client it is: an
 * ioredis Redis or Cluster (5 or 6, from any installed copy) or a node-redis client or cluster
 * (5 or later). Clients are recognised by their methods, never by `instanceof`: an application's
 * ioredis is often another copy than sluice's own.
 */

/** Listener type wide enough for every client's event signatures. */
type Listener = (...args: unknown[]) => void

/** An ioredis `Redis` or `Cluster` (5 or 6), from any copy: the part sluice uses. */
export interface IORedisClient {
  status: string
  isCluster?: boolean
  callBuffer(...args: never[]): Promise<unknown>
  call(...args: never[]): Promise<unknown>
  defineCommand(name: string, definition: { lua: string; numberOfKeys?: number }): void
  on(event: string, listener: Listener): unknown
  once(event: string, listener: Listener): unknown
  off(event: string, listener: Listener): unknown
  connect(): Promise<unknown>
  disconnect(): void
  quit(): Promise<unknown>
  duplicate(...args: never[]): unknown
}

/** A node-redis client or cluster (the `redis` package, 5 or later): the part sluice uses. */
export interface NodeRedisClient {
  isOpen: boolean
  /** Absent on a node-redis 5 cluster, which has only isOpen. */
  isReady?: boolean
  sendCommand(...args: never[]): Promise<unknown>
  withTypeMapping(...args: never[]): unknown
  on(event: string, listener: Listener): unknown
  off(event: string, listener: Listener): unknown
  duplicate(...args: never[]): unknown
}

/** A client RedisStore accepts. */
export type RedisClient = IORedisClient | NodeRedisClient

/**
 * ready: commands can be sent. idle: not connected yet, connects on demand (ioredis lazyConnect).
 * connecting: a connection is being made. down: lost, or closed.
 */
export type ConnectionState = 'ready' | 'idle' | 'connecting' | 'down'

/** Command arguments after the command name: strings and numbers. */
export type Args = readonly (string | number)[]

/** A subscription of one channel on a connection of its own. */
export interface Subscription {
  close(): Promise<void>
}

/** One client seen through the operations sluice needs. */
export interface RedisConnection {
  readonly client: RedisClient
  readonly kind: 'ioredis' | 'node-redis'
  readonly isCluster: boolean
  state(): ConnectionState
  /** The state in words, for error messages ("reconnecting", "closed" …). */
  describeState(): string
  /** Calls `listener` each time the connection becomes ready; returns a function that stops it. */
  onReady(listener: () => void): () => void
  /** Calls `listener` when a connection attempt fails or the connection ends; returns a stopper. */
  onDown(listener: () => void): () => void
  /** Starts connecting a client that waits to be used first (ioredis lazyConnect). */
  connect(): void
  /**
   * On a cluster, the master serving hash slot `slot` as this client last learnt ("host:port"),
   * undefined where it does not know; always undefined on one Redis.
   */
  nodeOfSlot(slot: number): string | undefined
  /** FCALL `fn` with `keys` and `args` (routed by the first key on a cluster); binary replies. */
  fcall(fn: string, keys: readonly string[], args: Args): Promise<unknown[]>
  /** The same as a script: EVALSHA, sending the script again when Redis does not have it. */
  evalScript(script: string, keys: readonly string[], args: Args): Promise<unknown[]>
  /** FUNCTION LOAD REPLACE on the Redis, or on every master of a cluster. */
  loadLibrary(source: string): Promise<void>
  /** Key names matching a glob pattern (SCAN; on a cluster, of every master), at most `limit`. */
  scanKeys(pattern: string, limit: number): Promise<string[]>
  /** PING; on a cluster, every master answers and reports cluster_state:ok. */
  ping(): Promise<void>
  publish(channel: string, message: string): Promise<void>
  /**
   * Subscribes to `channel` on a connection of its own (a duplicate of this client, or `given`,
   * which is then left open), calling `onMessage` for each message; rejects after `timeoutMs`.
   */
  subscribe(
    channel: string,
    onMessage: (message: string) => void,
    timeoutMs: number,
    given?: RedisClient,
  ): Promise<Subscription>
  /** Swallows the client's 'error' events (clients sluice made: failures reach callers as rejections). */
  ignoreErrors(): void
  /** Closes the client, waiting for replies in flight when it can. */
  close(): Promise<void>
}

function has(value: object, method: string): boolean {
  return typeof (value as Record<string, unknown>)[method] === 'function'
}

export function isIORedis(value: unknown): value is IORedisClient {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { status?: unknown }).status === 'string' &&
    has(value, 'callBuffer') &&
    has(value, 'defineCommand') &&
    has(value, 'on')
  )
}

export function isNodeRedis(value: unknown): value is NodeRedisClient {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { isOpen?: unknown }).isOpen === 'boolean' &&
    has(value, 'sendCommand') &&
    has(value, 'on')
  )
}

/** A node-redis cluster (as opposed to a single client) has masters and node clients. */
export function isNodeRedisCluster(client: NodeRedisClient): boolean {
  return has(client, 'nodeClient') && 'masters' in client
}

/** An ioredis Cluster says so, and lists its nodes. */
export function isIORedisCluster(client: IORedisClient): boolean {
  return client.isCluster === true && has(client, 'nodes')
}

/** What a Redis without Functions, or an ACL that forbids them, answers to FCALL or FUNCTION LOAD. */
export const NO_FUNCTIONS = /unknown command|unknown subcommand|NOPERM.*'(fcall|function)/i

/** Races `promise` against a deadline, rejecting with `error()` when it passes. */
export function within<T>(promise: Promise<T>, timeoutMs: number, error: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(error()), timeoutMs)
  })
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer))
}
