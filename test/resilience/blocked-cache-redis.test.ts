import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Limiter, type LimiterOptions, tokenBucket } from '../../src/index.js'
import { BlockedKeyCache } from '../../src/store/blocked-cache.js'
import { GuardedStore } from '../../src/store/guarded.js'
import { RedisInvalidationBus } from '../../src/store/redis/invalidation.js'
import { RedisStore, redisClientOptions } from '../../src/store/redis/store.js'
import { type RedisServer, startRedis } from '../helpers/redis-server.js'
import { sleep } from '../helpers/sleep.js'
import { waitFor } from './load.js'

const SLOW = 1e-6

/**
 * Commands clients sent Redis since the last reset, from INFO commandstats: script calls (each
 * carries a batch of ops), pings, publishes. Commands a script runs inside Redis (GET, SET, TIME …)
 * are counted by Redis too but are part of their script call, so they are left out.
 */
async function clientCalls(admin: Redis): Promise<number> {
  const info = await admin.info('commandstats')
  let total = 0
  for (const m of info.matchAll(/^cmdstat_([a-z_|-]+):calls=(\d+)/gm)) {
    if (/^(eval|evalsha|eval_ro|evalsha_ro|fcall|ping|publish|script)(\||$)/.test(m[1]!))
      total += Number(m[2])
  }
  return total
}

describe('blocked-key cache on Redis', () => {
  let server: RedisServer
  let admin: Redis
  const clients: Redis[] = []

  beforeAll(async () => {
    server = await startRedis()
    admin = new Redis(server.url)
  })
  afterAll(async () => {
    for (const c of clients) c.disconnect()
    admin.disconnect()
    await server.stop()
  })

  /** One gateway instance's worth of store: Redis, guarded, behind a blocked-key cache. */
  async function instance(limits: LimiterOptions['limits'], extra: Partial<LimiterOptions> = {}) {
    const client = new Redis(server.url, redisClientOptions())
    clients.push(client)
    const store = new RedisStore({ client })
    await store.whenReady()
    const cache = new BlockedKeyCache()
    const guard = new GuardedStore({ store, failMode: 'open', timeoutMs: 100 })
    const limiter = new Limiter({ store: cache.wrap(guard), policy: 'hammer', limits, ...extra })
    return { client, cache, limiter }
  }

  async function hammer(limiter: Limiter, subject: string, total: number, concurrency: number) {
    let allowed = 0
    for (let sent = 0; sent < total; sent += concurrency) {
      const wave = await Promise.all(Array.from({ length: concurrency }, () => limiter.consume(subject)))
      allowed += wave.filter((d) => d.allowed).length
    }
    return allowed
  }

  it('a key denied by its limit and hammered with 10,000 requests costs at most 100 Redis calls', async () => {
    const { limiter, cache } = await instance({ burst: tokenBucket({ capacity: 5, refillPerSecond: SLOW }) })
    await admin.config('RESETSTAT')
    // Waves of 10 concurrent requests: without the cache that would be 1,000 script calls.
    const allowed = await hammer(limiter, 'attacker', 10_000, 10)
    const calls = await clientCalls(admin)
    expect(allowed).toBe(5)
    expect(calls).toBeGreaterThan(0)
    expect(calls).toBeLessThanOrEqual(100)
    expect(cache.misses).toBeLessThanOrEqual(100) // ops that reached Redis at all
    expect(cache.hits + cache.misses).toBe(10_000)
  })

  it('a blocked key hammered with 10,000 requests costs at most 100 Redis calls', async () => {
    const { limiter, cache } = await instance(
      { burst: tokenBucket({ capacity: 5, refillPerSecond: SLOW }) },
      { block: { after: 10, withinMs: 60_000, durationsMs: [60_000] } },
    )
    await admin.config('RESETSTAT')
    const allowed = await hammer(limiter, 'blocked', 10_000, 10)
    const calls = await clientCalls(admin)
    expect(allowed).toBe(5)
    expect(calls).toBeGreaterThan(0)
    expect(calls).toBeLessThanOrEqual(100)
    expect(cache.misses).toBeLessThanOrEqual(100)
    const d = await limiter.consume('blocked')
    expect(d.blocked).toBe(true)
  })

  it('an unblock or refund on one instance reaches the others through pub/sub', async () => {
    const limits = { burst: tokenBucket({ capacity: 3, refillPerSecond: SLOW }) }
    const block = { after: 2, withinMs: 60_000, durationsMs: [3_600_000] }
    const a = await instance(limits, { block })
    const b = await instance(limits, { block })
    // maxAgeMs is 1 s: without the bus, instance A would keep denying for up to a second.
    const busA = new RedisInvalidationBus({ cache: a.cache, client: a.client })
    const busB = new RedisInvalidationBus({ cache: b.cache, client: b.client })
    await Promise.all([busA.start(), busB.start()])
    try {
      for (let i = 0; i < 3; i++) expect((await a.limiter.consume('s')).allowed).toBe(true)
      await a.limiter.consume('s')
      expect((await a.limiter.consume('s')).blocked).toBe(true)
      const hitsBefore = a.cache.hits
      expect((await a.limiter.consume('s')).blocked).toBe(true)
      expect(a.cache.hits).toBe(hitsBefore + 1) // answered by A's cache

      await b.limiter.unblock('s')
      await waitFor('A to hear of the unblock', () => busA.received > 0, 2_000)
      const after = await a.limiter.consume('s')
      expect(after.blocked).toBe(false)

      // A refund on B: A's cached denial of the exhausted limit goes too.
      await a.limiter.reset('s')
      const r = await b.limiter.reserve('t', { requests: 3 })
      expect((await a.limiter.consume('t')).allowed).toBe(false)
      const received = busA.received
      await r.settle({ requests: 1 })
      await waitFor('A to hear of the refund', () => busA.received > received, 2_000)
      expect((await a.limiter.consume('t')).allowed).toBe(true)
    } finally {
      await busA.close()
      await busB.close()
    }
  })

  it('without pub/sub a cached denial outlives a remote refund by at most maxAgeMs', async () => {
    const limits = { burst: tokenBucket({ capacity: 2, refillPerSecond: SLOW }) }
    const a = await instance(limits)
    const b = await instance(limits)
    const r = await b.limiter.reserve('u', { requests: 2 })
    expect((await a.limiter.consume('u')).allowed).toBe(false)
    await r.cancel()
    const cancelledAt = performance.now()
    // Still denied from A's cache until maxAgeMs (1 s) after A learned the denial; then allowed.
    let allowedAt: number | undefined
    while (allowedAt === undefined) {
      if ((await a.limiter.consume('u')).allowed) allowedAt = performance.now()
      else await sleep(20)
    }
    expect(allowedAt - cancelledAt).toBeLessThanOrEqual(a.cache.maxAgeMs + 200)
  })
})
