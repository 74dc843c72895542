import {
  POLICY_COSTS,
  peerOp,
  peerPolicyOp,
  peerRedisOneLimit,
  peerRedisPolicy,
  RedisStore,
  sluiceOneLimit,
  sluiceOp,
  sluicePolicy,
  subjects,
} from '../contenders.js'
import { type Contender, contest } from '../harness/contest.js'
import { newClient } from '../harness/redis.js'
import { redisCost, redisCostNote } from '../harness/redis-cost.js'
import { allowedNote, throughputRow } from '../harness/rows.js'
import type { BenchContext, Workload } from '../harness/types.js'

async function run(ctx: BenchContext, policy: boolean) {
  const redis = await ctx.redis()
  const subjectOf = subjects(ctx.options.keys)
  const sluice: Contender = {
    name: 'sluice RedisStore',
    async setup() {
      const client = newClient(redis.url)
      await client.ping()
      const store = new RedisStore({ client })
      const limiter = policy ? sluicePolicy(store) : sluiceOneLimit(store)
      return {
        op: policy ? sluiceOp(limiter, subjectOf, POLICY_COSTS) : sluiceOp(limiter, subjectOf),
        ...redisCost(redis),
        teardown: async () => {
          await store.close()
          await client.quit()
        },
      }
    },
  }
  const peer: Contender = {
    name: policy ? '3× RateLimiterRedis' : 'RateLimiterRedis',
    async setup() {
      const client = newClient(redis.url)
      await client.ping()
      return {
        op: policy
          ? peerPolicyOp(peerRedisPolicy(client), subjectOf)
          : peerOp(peerRedisOneLimit(client), subjectOf),
        ...redisCost(redis),
        teardown: async () => {
          await client.quit()
        },
      }
    },
  }
  const id = policy ? 'redis-policy' : 'redis-1-limit'
  const measures = await contest(ctx, { id, contenders: [sluice, peer], reset: () => redis.flush() })
  const note = [allowedNote(measures, 'all'), redisCostNote(measures)].filter(Boolean).join('; ')
  return {
    rows: [
      throughputRow(id, policy ? 'RedisStore, policy of 3 limits' : 'RedisStore, one limit', measures, {
        note,
      }),
    ],
  }
}

export const redisOneLimit: Workload = {
  id: 'redis-1-limit',
  title: 'RedisStore decisions/s, one limit, vs RateLimiterRedis',
  needsRedis: true,
  run: (ctx) => run(ctx, false),
}

export const redisPolicy: Workload = {
  id: 'redis-policy',
  title: 'RedisStore decisions/s, policy of 3 limits, vs three RateLimiterRedis in a row',
  needsRedis: true,
  run: (ctx) => run(ctx, true),
}
