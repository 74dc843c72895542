/**
 * What a queue nobody waits in costs Redis, counted: a decision with `maxWaitMs` must send Redis
 * exactly the commands of the same decision without it (the queue's guard is read in the
 * batch's MGET, from the marker lua/queue.lua keeps while anyone waits). And the marker must
 * really stop newcomers while someone waits, and vanish when the queue empties.
 */
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Limiter, tokenBucket } from '../../src/index.js'
import { queuesOf } from '../../src/store/queues.js'
import { RedisStore } from '../../src/store/redis/store.js'
import { type RedisServer, startRedis } from '../helpers/redis-server.js'

let server: RedisServer
let admin: Redis
let store: RedisStore
beforeAll(async () => {
  server = await startRedis()
  admin = new Redis(server.url)
  store = new RedisStore({ url: server.url })
})
afterAll(async () => {
  await store?.close()
  admin?.disconnect()
  await server?.stop()
})

/** Commands per decision by name, from INFO commandstats after CONFIG RESETSTAT. */
async function commandsOf(run: () => Promise<unknown>): Promise<Record<string, number>> {
  await admin.config('RESETSTAT')
  await run()
  const out: Record<string, number> = {}
  for (const line of (await admin.info('commandstats')).split('\n')) {
    const m = /^cmdstat_([^:]+):calls=(\d+)/.exec(line)
    if (m !== null && !m[1]!.startsWith('config') && m[1] !== 'info') out[m[1]!] = Number(m[2])
  }
  return out
}

describe('a queue nobody waits in, on Redis', () => {
  it('sends the same commands as the same decision without a queue', async () => {
    const limiter = new Limiter({
      store,
      policy: 'guard-commands',
      limits: { burst: tokenBucket({ capacity: 1e9, refillPerSecond: 1e9 }) },
    })
    await limiter.consume('warm-up')
    const decisions = async (options?: { maxWaitMs: number }) => {
      for (let i = 0; i < 50; i++) {
        const d = await limiter.consume(`s${i}`, undefined, options)
        expect(d.allowed).toBe(true)
      }
    }
    const plain = await commandsOf(() => decisions())
    const queued = await commandsOf(() => decisions({ maxWaitMs: 1000 }))
    expect(plain.fcall ?? plain.evalsha).toBe(50)
    expect(queued).toEqual(plain)
  })

  it('keeps a marker while anyone waits: a newcomer is held back, and the marker goes with the last ticket', async () => {
    const queues = queuesOf(store)
    const limiter = new Limiter({
      store,
      policy: 'guard-marker',
      limits: { burst: tokenBucket({ capacity: 100, refillPerSecond: 1 }) },
    })
    const key = limiter.keysFor('alice').queue
    const ticket = await queues.enqueue(key, {
      waiter: 'w1',
      flow: 'bob',
      weight: 1,
      leaseMs: 30_000,
      maxPerFlow: 10,
      maxTotal: 10,
    })
    expect(ticket.queued).toBe(true)
    expect(await admin.exists(`${key}:on`)).toBe(1)
    // Room in the bucket, but someone waits: the first try is not decided.
    const held = await queues.first(limiter.opFor('consume', 'alice', [1], 'op-1'), key)
    expect(held.kind).toBe('wait')
    if (!ticket.queued) return
    expect(await queues.leave(key, ticket.ticket)).toBe(0)
    expect(await admin.exists(`${key}:on`, key, `${key}:lease`, `${key}:meta`)).toBe(0)
    const ran = await queues.first(limiter.opFor('consume', 'alice', [1], 'op-2'), key)
    expect(ran.kind).toBe('ran')
  })
})
