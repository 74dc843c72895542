import { Cluster, Redis } from 'ioredis'
import { Cluster as Cluster5, Redis as Redis5 } from 'ioredis5'
import { createClient, createCluster } from 'redis'
import { createClient as createClient5, createCluster as createCluster5 } from 'redis5'
import type { RedisClient } from '../../src/store/redis/connection.js'
import {
  clusterClientOptions,
  nodeRedisClientOptions,
  redisClientOptions,
} from '../../src/store/redis/store.js'

/**
 * The Redis clients applications hold: sluice's own ioredis (6), ioredis 5 (another copy,
 * installed as `ioredis5`), and the official `redis` package (node-redis 6, and 5 installed as
 * `redis5`).
 */
export const CLIENT_KINDS = ['ioredis 6', 'ioredis 5', 'node-redis', 'node-redis 5'] as const
export type ClientKind = (typeof CLIENT_KINDS)[number]

export interface MadeClient {
  client: RedisClient
  close(): Promise<void>
}

/** A connected client of `kind` on a single Redis, with sluice's recommended options. */
export async function singleClient(kind: ClientKind, url: string): Promise<MadeClient> {
  switch (kind) {
    case 'ioredis 6': {
      const client = new Redis(url, redisClientOptions())
      client.on('error', () => {})
      return { client, close: async () => client.disconnect() }
    }
    case 'ioredis 5': {
      // Typed for ioredis 6; the options are the same in 5.
      const client = new Redis5(url, redisClientOptions() as object)
      client.on('error', () => {})
      return { client, close: async () => client.disconnect() }
    }
    case 'node-redis': {
      const client = createClient({ url, ...nodeRedisClientOptions() })
      client.on('error', () => {})
      await client.connect()
      return { client, close: () => client.close() }
    }
    case 'node-redis 5': {
      const client = createClient5({ url, ...nodeRedisClientOptions() })
      client.on('error', () => {})
      await client.connect()
      return { client: client as unknown as RedisClient, close: () => client.close() }
    }
  }
}

/** A client of `kind` on a Redis Cluster whose nodes listen on `ports` of 127.0.0.1. */
export async function clusterClient(kind: ClientKind, ports: number[]): Promise<MadeClient> {
  const nodes = ports.map((port) => ({ host: '127.0.0.1', port }))
  switch (kind) {
    case 'ioredis 6': {
      const client = new Cluster(nodes, clusterClientOptions())
      client.on('error', () => {})
      return { client, close: async () => client.disconnect() }
    }
    case 'ioredis 5': {
      const client = new Cluster5(nodes, clusterClientOptions() as object)
      client.on('error', () => {})
      return { client, close: async () => client.disconnect() }
    }
    case 'node-redis': {
      const client = createCluster({
        rootNodes: nodes.map((n) => ({ url: `redis://${n.host}:${n.port}` })),
        defaults: nodeRedisClientOptions(),
      })
      client.on('error', () => {})
      await client.connect()
      return { client, close: () => client.close() }
    }
    case 'node-redis 5': {
      const client = createCluster5({
        rootNodes: nodes.map((n) => ({ url: `redis://${n.host}:${n.port}` })),
        defaults: nodeRedisClientOptions(),
      })
      client.on('error', () => {})
      await client.connect()
      return { client: client as unknown as RedisClient, close: () => client.close() }
    }
  }
}
