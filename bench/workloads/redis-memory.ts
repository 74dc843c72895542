import { RateLimiterRedis } from 'rate-limiter-flexible'
import { defaultTiers } from '../../src/http/tiers.js'
import { Limiter, RedisStore } from '../../src/index.js'
import { progress } from '../harness/progress.js'
import { newClient } from '../harness/redis.js'
import type { BenchContext, MemoryRow, RedisHandle, Workload } from '../harness/types.js'

const COSTS = { requests: 1, tokens: 500 }

function usedMemory(info: string): number {
  return Number(/^used_memory:(\d+)/m.exec(info)?.[1])
}

/** Charges each subject once; returns MEMORY USAGE summed over the subject's keys, and used_memory growth. */
async function perSubject(
  redis: RedisHandle,
  subjects: string[],
  charge: (s: string) => Promise<unknown>,
  keysOf: (s: string) => string[],
) {
  await redis.flush()
  const before = usedMemory(await redis.info('memory'))
  for (let i = 0; i < subjects.length; i += 256) await Promise.all(subjects.slice(i, i + 256).map(charge))
  const after = usedMemory(await redis.info('memory'))
  const keys = subjects.flatMap(keysOf)
  const usage = await redis.memoryUsage(keys)
  const existing = usage.filter((u) => u > 0).length
  return {
    memoryUsage: usage.reduce((a, b) => a + b, 0) / subjects.length,
    usedMemory: (after - before) / subjects.length,
    keysPerSubject: existing / subjects.length,
  }
}

async function run(ctx: BenchContext) {
  const redis = await ctx.redis()
  const n = ctx.options.redisMemorySubjects
  const subjects = Array.from({ length: n }, (_, i) => `user-${i}`)
  const tier = defaultTiers().authenticated!

  progress(`redis-memory · sluice RedisStore: charging ${n} subjects (authenticated tier: 3 limits)`)
  const client = newClient(redis.url)
  const store = new RedisStore({ client })
  const limiter = new Limiter({
    store,
    policy: 'authenticated',
    limits: tier.limits,
    alertAt: 0.8,
    block: true,
  })
  const sluice = await perSubject(
    redis,
    subjects,
    (s) => limiter.consume(s, COSTS),
    (s) => {
      const k = limiter.keysFor(s)
      return [...k.limits, ...k.alerts, k.block, k.strikes]
    },
  )
  await store.close()

  progress(`redis-memory · 3× RateLimiterRedis: charging ${n} subjects`)
  const peers = [
    new RateLimiterRedis({ storeClient: client, points: 200, duration: 3600, keyPrefix: 'rlf-hourly' }),
    new RateLimiterRedis({ storeClient: client, points: 100_000, duration: 3600, keyPrefix: 'rlf-tokens' }),
    new RateLimiterRedis({ storeClient: client, points: 100, duration: 10, keyPrefix: 'rlf-burst' }),
  ]
  const peer = await perSubject(
    redis,
    subjects,
    async (s) => {
      await peers[0]!.consume(s, COSTS.requests)
      await peers[1]!.consume(s, COSTS.tokens)
      await peers[2]!.consume(s, COSTS.requests)
    },
    (s) => peers.map((p) => p.getKey(s)),
  )
  await client.quit()
  await redis.flush()

  const row: MemoryRow = {
    id: 'redis-memory',
    what: `RedisStore MEMORY USAGE per subject, "authenticated" tier (3 limits), ${n.toLocaleString('en')} subjects`,
    unit: 'per subject',
    sluice: sluice.memoryUsage,
    peer: '3× RateLimiterRedis',
    peerBytes: peer.memoryUsage,
    ratio: peer.memoryUsage / sluice.memoryUsage,
    note:
      `keys per subject ${sluice.keysPerSubject.toFixed(1)} vs ${peer.keysPerSubject.toFixed(1)}; ` +
      `used_memory growth ${sluice.usedMemory.toFixed(0)} vs ${peer.usedMemory.toFixed(0)} B per subject`,
  }
  return { memory: [row] }
}

export const redisMemory: Workload = {
  id: 'redis-memory',
  title:
    'RedisStore MEMORY USAGE per subject for the default "authenticated" policy, vs three RateLimiterRedis',
  needsRedis: true,
  run,
}
