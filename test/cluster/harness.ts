import type { Cluster } from 'ioredis'
import { RedisStore } from '../../src/store/redis/store.js'
import { type RedisClusterServer, startRedisCluster } from '../helpers/redis-cluster.js'
import { type ClientKind, clusterClient, type MadeClient } from '../helpers/store-clients.js'
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

/** The same through a cluster client of another kind (TTLs are still read with sluice's ioredis). */
export function clusterClientHarness(kind: ClientKind): StoreHarness {
  let cluster: RedisClusterServer
  let admin: Cluster
  let made: MadeClient
  return {
    name: `RedisStore on Redis Cluster with a ${kind} cluster client`,
    start: async () => {
      cluster = await startRedisCluster()
      admin = cluster.client()
      made = await clusterClient(
        kind,
        cluster.nodes.map((n) => n.port),
      )
      await new RedisStore({ client: made.client }).whenReady()
    },
    stop: async () => {
      await made.close()
      admin.disconnect()
      await cluster.stop()
    },
    create: async () => redisUnderTest(admin, undefined, made.client),
  }
}
