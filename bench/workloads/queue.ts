import { MemoryStore, RedisStore, sluiceOneLimit, subjects } from '../contenders.js'
import { type Contender, contest } from '../harness/contest.js'
import { newClient } from '../harness/redis.js'
import { allowedNote, throughputRow } from '../harness/rows.js'
import type { BenchContext, Workload } from '../harness/types.js'

/**
 * What a queue costs when nobody waits (issue: within 5 % of the same limit without one): the
 * same limiter and subjects, consume() with and without `maxWaitMs`. Nothing is refused, so
 * every call with a queue runs through the queue's verdict and nothing more.
 */
async function run(ctx: BenchContext, redis: boolean) {
  const subjectOf = subjects(ctx.options.keys)
  const server = redis ? await ctx.redis() : undefined
  const contender = (queued: boolean): Contender => ({
    name: `sluice ${redis ? 'RedisStore' : 'MemoryStore'}${queued ? ' + queue (maxWaitMs 1000)' : ', no queue'}`,
    async setup() {
      const client = server ? newClient(server.url) : undefined
      const store = client ? new RedisStore({ client }) : new MemoryStore()
      const limiter = sluiceOneLimit(store)
      const wait = { maxWaitMs: 1000 }
      return {
        op: queued
          ? (k: number) => limiter.consume(subjectOf[k]!, undefined, wait).then((d) => d.allowed)
          : (k: number) => limiter.consume(subjectOf[k]!).then((d) => d.allowed),
        teardown: async () => {
          await store.close()
          await client?.quit()
        },
      }
    },
  })
  const id = redis ? 'queue-redis' : 'queue-memory'
  const measures = await contest(ctx, {
    id,
    contenders: [contender(true), contender(false)],
    ...(server ? { reset: () => server.flush() } : {}),
  })
  return {
    rows: [
      throughputRow(
        id,
        `${redis ? 'RedisStore' : 'MemoryStore'}, one limit, uncontended: queue vs none`,
        measures,
        {
          note: allowedNote(measures, 'all') ?? 'ratio: with a queue / the same limit without one',
        },
      ),
    ],
  }
}

export const queueMemory: Workload = {
  id: 'queue-memory',
  title: 'MemoryStore decisions/s with a queue (nobody waiting) vs the same limit without',
  run: (ctx) => run(ctx, false),
}

export const queueRedis: Workload = {
  id: 'queue-redis',
  title: 'RedisStore decisions/s with a queue (nobody waiting) vs the same limit without',
  needsRedis: true,
  run: (ctx) => run(ctx, true),
}
