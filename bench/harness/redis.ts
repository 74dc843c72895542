import { Redis, type RedisOptions } from 'ioredis'
import { type RedisServer, startRedis } from '../../test/helpers/redis-server.js'
import type { RedisHandle } from './types.js'

/**
 * The ioredis settings every contender's client gets, sluice and peers alike: ioredis's defaults.
 * enableAutoPipelining was measured too and made both sides slower on this workload (sluice ~124k →
 * ~78k, RateLimiterRedis ~125k → ~84k decisions/s), so neither gets it.
 */
export const CLIENT_OPTIONS: RedisOptions = {}

export function newClient(url: string): Redis {
  return new Redis(url, CLIENT_OPTIONS)
}

export interface BenchRedis extends RedisHandle {
  stop(): Promise<void>
}

/**
 * A redis-server of the bench's own on a free port (test/helpers/redis-server.ts: no persistence,
 * default settings otherwise). REDIS_URL is ignored on purpose: the bench never touches a server it
 * did not start.
 */
export async function startBenchRedis(): Promise<BenchRedis> {
  delete process.env.REDIS_URL
  const server: RedisServer = await startRedis()
  const admin = new Redis(server.url)
  const version = /redis_version:(\S+)/.exec(await admin.info('server'))?.[1] ?? 'unknown'
  return {
    url: server.url,
    port: server.port,
    version,
    async flush() {
      await admin.flushall()
      await admin.config('RESETSTAT')
    },
    async commandCalls() {
      const text = await admin.info('commandstats')
      const calls = new Map<string, number>()
      for (const m of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls.set(m[1]!, Number(m[2]))
      return calls
    },
    info: (section) => admin.info(section),
    async memoryUsage(keys) {
      const pipeline = admin.pipeline()
      for (const key of keys) pipeline.call('MEMORY', 'USAGE', key, 'SAMPLES', '0')
      const replies = (await pipeline.exec()) ?? []
      return replies.map(([error, value]) => {
        if (error) throw error
        return value === null ? 0 : Number(value)
      })
    },
    async stop() {
      admin.disconnect()
      await server.stop()
    },
  }
}
