import type { Cluster } from 'ioredis'
import { RedisStore } from '../../src/store/redis/store.js'
import { type RedisClusterServer, startRedisCluster } from '../helpers/redis-cluster.js'
import { redisUnderTest, type StoreHarness } from '../helpers/store-harness.js'

/** The store contract's harness for a RedisStore on a real three-node Redis Cluster. */
export function clusterHarness(): StoreHarness & { cluster(): RedisClusterServer; client(): Cluster } {
  let cluster: RedisClusterServer
  let client: Cluster
  return {
    name: 'RedisStore on Redis Cluster',
    cluster: () => cluster,
    client: () => client,
    start: async () => {
      cluster = await startRedisCluster()
      client = cluster.client()
      await new RedisStore({ client }).whenReady()
    },
    stop: async () => {
      client.disconnect()
      await cluster.stop()
    },
    create: async () => redisUnderTest(client),
  }
}
