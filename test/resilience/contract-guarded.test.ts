import { Redis } from 'ioredis'
import { BlockedKeyCache } from '../../src/store/blocked-cache.js'
import { GuardedStore } from '../../src/store/guarded.js'
import { RedisStore, redisClientOptions } from '../../src/store/redis/store.js'
import { type RedisServer, startRedis } from '../helpers/redis-server.js'
import { storeContract } from '../helpers/store-contract.js'
import { redisUnderTest } from '../helpers/store-harness.js'

// The whole stack a gateway uses — blocked-key cache, then deadline and breaker, then Redis — must
// keep every promise of the bare store while Redis is healthy.
let server: RedisServer
let client: Redis
storeContract({
  name: 'BlockedKeyCache + GuardedStore + RedisStore',
  start: async () => {
    server = await startRedis()
    client = new Redis(server.url, redisClientOptions())
    await new RedisStore({ client }).whenReady()
  },
  stop: async () => {
    client.disconnect()
    await server.stop()
  },
  create: async () =>
    // A generous deadline: this suite checks semantics on a shared machine, not speed.
    redisUnderTest(client, (redis) =>
      new BlockedKeyCache().wrap(new GuardedStore({ store: redis, failMode: 'closed', timeoutMs: 5_000 })),
    ),
})
