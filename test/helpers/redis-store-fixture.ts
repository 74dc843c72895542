import { Redis } from 'ioredis'
import { afterAll, beforeAll } from 'vitest'
import { RedisStore } from '../../src/store/redis/store.js'
import { type RedisServer, startRedis } from './redis-server.js'

/** A redis-server of the test file's own, an admin client on it and a RedisStore using it. */
export interface RedisStoreFixture {
  server: RedisServer
  admin: Redis
  store: RedisStore
}

/** Starts the fixture before the file's tests and stops what it started after them. */
export function redisStoreFixture(): RedisStoreFixture {
  const fixture = {} as RedisStoreFixture
  beforeAll(async () => {
    fixture.server = await startRedis()
    fixture.admin = new Redis(fixture.server.url)
    fixture.store = new RedisStore({ url: fixture.server.url })
  })
  afterAll(async () => {
    await fixture.store?.close()
    fixture.admin?.disconnect()
    await fixture.server?.stop()
  })
  return fixture
}
