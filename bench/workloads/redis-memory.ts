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

/**
 * Charges each subject once. MEMORY USAGE is read right after each chunk of 256 is charged, while
 * every key a charge creates still exists (sluice drops a key once its state is full again: the
 * burst bucket's after 0.1 s), so it is the footprint of an active subject. used_memory growth is
 * over the whole run and so counts only the keys still alive at the end.
 */
async function perSubject(
  redis: RedisHandle,
  subjects: string[],
  charge: (s: string) => Promise<unknown>,
  keysOf: (s: string) => string[],
) {
  await redis.flush()
  const before = usedMemory(await redis.info('memory'))
  let usage = 0
  let existing = 0
  for (let i = 0; i < subjects.length; i += 256) {
    const chunk = subjects.slice(i, i + 256)
    await Promise.all(chunk.map(charge))
    for (const u of await redis.memoryUsage(chunk.flatMap(keysOf))) {
      usage += u
      if (u > 0) existing++
    }
  }
  const after = usedMemory(await redis.info('memory'))
  return {
    memoryUsage: usage / subjects.length,
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
      return [k.state, ...k.limits, ...k.alerts, k.block, k.strikes]
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
      `used_memory growth over the run ${sluice.usedMemory.toFixed(0)} vs ${peer.usedMemory.toFixed(0)} B per subject`,
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
