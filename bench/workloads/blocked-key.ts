import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible'
import { Limiter, RedisStore, tokenBucket } from '../../src/index.js'
import { BlockedKeyCache } from '../../src/store/blocked-cache.js'
import { type Contender, contest } from '../harness/contest.js'
import { formatRate } from '../harness/progress.js'
import { newClient } from '../harness/redis.js'
import { redisCost, redisCostNote } from '../harness/redis-cost.js'
import { allowedNote, throughputRow } from '../harness/rows.js'
import type { BenchContext, Workload } from '../harness/types.js'

async function run(ctx: BenchContext, inFlight: number) {
  const redis = await ctx.redis()
  const sluice = (cached: boolean): Contender => ({
    name: cached ? 'sluice RedisStore + BlockedKeyCache' : 'sluice RedisStore, no cache',
    async setup() {
      const client = newClient(redis.url)
      await client.ping()
      const redisStore = new RedisStore({ client })
      const store = cached ? new BlockedKeyCache().wrap(redisStore) : redisStore
      const limiter = new Limiter({
        store,
        policy: 'hammered',
        limits: { burst: tokenBucket({ capacity: 10, refillPerSecond: 1 }) },
        block: { after: 10, withinMs: 60_000, durationsMs: [600_000] },
      })
      return {
        op: () => limiter.consume('attacker').then((d) => d.allowed),
        ...redisCost(redis),
        teardown: async () => {
          await store.close()
          await client.quit()
        },
      }
    },
  })
  const peer: Contender = {
    name: 'RateLimiterRedis + inMemoryBlock',
    async setup() {
      const client = newClient(redis.url)
      await client.ping()
      const limiter = new RateLimiterRedis({
        storeClient: client,
        points: 10,
        duration: 1,
        blockDuration: 600,
        inMemoryBlockOnConsumed: 10,
        inMemoryBlockDuration: 600,
        keyPrefix: 'rlf-hammered',
      })
      return {
        op: () =>
          limiter.consume('attacker', 1).then(
            () => true,
            (reason: unknown) => {
              if (reason instanceof RateLimiterRes) return false
              throw reason
            },
          ),
        ...redisCost(redis),
        teardown: async () => {
          await client.quit()
        },
      }
    },
  }
  const id = inFlight === 1 ? 'blocked-key-serial' : 'blocked-key'
  const [cached, plain, rlf] = await contest(ctx, {
    id,
    contenders: [sluice(true), sluice(false), peer],
    inFlight,
    keys: 1,
    reset: () => redis.flush(),
  })
  const measures = [cached!, rlf!]
  const odd = allowedNote([cached!, plain!, rlf!], 'none')
  const row = throughputRow(id, `hammered blocked key, ${inFlight} in flight`, measures, {
    unit: 'denials/s',
    note: [
      odd,
      redisCostNote(measures, 'denial'),
      `without the cache: ${formatRate(plain!.opsPerSec)} denials/s, ${redisCostNote([plain!], 'denial')}`,
    ]
      .filter(Boolean)
      .join('; '),
  })
  row.others = [plain!]
  return { rows: [row] }
}

export const blockedKey: Workload = {
  id: 'blocked-key',
  title: 'one blocked key hammered with 256 in flight: denials/s and Redis commands per denial',
  needsRedis: true,
  run: (ctx) => run(ctx, ctx.options.inFlight),
}

export const blockedKeySerial: Workload = {
  id: 'blocked-key-serial',
  title: 'one blocked key hammered one request at a time: denials/s and Redis commands per denial',
  needsRedis: true,
  run: (ctx) => run(ctx, 1),
}
