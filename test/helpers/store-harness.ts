import { type Cluster, Redis } from 'ioredis'
import { MemoryStore } from '../../src/store/memory.js'
import type { RedisClient } from '../../src/store/redis/connection.js'
import { RedisStore } from '../../src/store/redis/store.js'
import type { Store, StoreOp, StoreResult } from '../../src/store/types.js'
import { type RedisServer, startRedis } from './redis-server.js'
import { type ClientKind, type MadeClient, singleClient } from './store-clients.js'

export interface StoreUnderTest {
  store: Store
  /** Milliseconds to live of a key, or undefined when it does not exist. */
  ttlMs(key: string): Promise<number | undefined>
  /** Calls made to the store so far (to show that bad input never reaches it). */
  calls(): number
}

export interface StoreHarness {
  name: string
  start(): Promise<void>
  create(): Promise<StoreUnderTest>
  stop(): Promise<void>
}

/** Counts the ops that reach a store (to show that bad input never does). */
export class CountingStore implements Store {
  count = 0
  constructor(private readonly inner: Store) {}
  execute(op: StoreOp): Promise<StoreResult> {
    this.count++
    return this.inner.execute(op)
  }
  ping() {
    return this.inner.ping()
  }
  close() {
    return this.inner.close()
  }
}

export function memoryHarness(): StoreHarness {
  return {
    name: 'MemoryStore',
    start: async () => {},
    stop: async () => {},
    create: async () => {
      const inner = new MemoryStore()
      const store = new CountingStore(inner)
      return { store, calls: () => store.count, ttlMs: async (key) => inner.ttlMs(key) }
    },
  }
}

/**
 * A RedisStore on `client` (any client kind, single or cluster), optionally wrapped (a guard, a
 * cache…), counting its ops, with TTLs read by PTTL through `admin` (an ioredis Redis or Cluster).
 */
export function redisUnderTest(
  admin: Redis | Cluster,
  wrap: (store: Store) => Store = (s) => s,
  client: RedisClient = admin,
): StoreUnderTest {
  const store = new CountingStore(wrap(new RedisStore({ client })))
  return {
    store,
    calls: () => store.count,
    ttlMs: async (key) => {
      const ttl = await admin.pttl(key)
      return ttl === -2 ? undefined : ttl
    },
  }
}

export function redisHarness(): StoreHarness & { server(): RedisServer; client(): Redis } {
  let server: RedisServer
  let client: Redis
  return {
    name: 'RedisStore',
    server: () => server,
    client: () => client,
    start: async () => {
      server = await startRedis()
      client = new Redis(server.url)
    },
    stop: async () => {
      client.disconnect()
      await server.stop()
    },
    create: async () => redisUnderTest(client),
  }
}

/** The contract's harness for a RedisStore on a single Redis through a client of `kind`. */
export function redisClientHarness(kind: ClientKind): StoreHarness {
  let server: RedisServer
  let admin: Redis
  let made: MadeClient
  return {
    name: `RedisStore with a ${kind} client`,
    start: async () => {
      server = await startRedis()
      admin = new Redis(server.url)
      made = await singleClient(kind, server.url)
      await new RedisStore({ client: made.client }).whenReady()
    },
    stop: async () => {
      await made.close()
      admin.disconnect()
      await server.stop()
    },
    create: async () => redisUnderTest(admin, undefined, made.client),
  }
}
