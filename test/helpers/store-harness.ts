import { type Cluster, Redis } from 'ioredis'
import { MemoryStore } from '../../src/store/memory.js'
import { RedisStore } from '../../src/store/redis/store.js'
import type { Store, StoreOp, StoreResult } from '../../src/store/types.js'
import { type RedisServer, startRedis } from './redis-server.js'

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
 * A RedisStore on `client` (a Redis or a Cluster), optionally wrapped (a guard, a cache…), counting
 * its ops, with TTLs read by PTTL.
 */
export function redisUnderTest(
  client: Redis | Cluster,
  wrap: (store: Store) => Store = (s) => s,
): StoreUnderTest {
  const store = new CountingStore(wrap(new RedisStore({ client })))
  return {
    store,
    calls: () => store.count,
    ttlMs: async (key) => {
      const ttl = await client.pttl(key)
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
