import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fixedWindow, tokenBucket } from '../src/core/limits.js'
import { Limiter } from '../src/limiter.js'
import { RedisStore } from '../src/store/redis/store.js'
import { limitsFor } from './fixtures/worker-protocol.js'
import { type RedisServer, startRedis } from './helpers/redis-server.js'
import { runWorkers } from './helpers/workers.js'

describe('RedisStore uses only the Redis clock', () => {
  let server: RedisServer
  beforeAll(async () => {
    server = await startRedis()
  })
  afterAll(async () => {
    await server.stop()
  })

  it('two processes whose clocks differ by 10 s get the same decisions', async () => {
    const job = {
      redisUrl: server.url,
      policy: 'skew',
      subject: 'shared',
      kind: 'skewBucket' as const,
      calls: 40,
    }
    const [ahead, behind] = await runWorkers([
      { ...job, clockSkewMs: 5_000 },
      { ...job, clockSkewMs: -5_000 },
    ])
    // The workers' clocks really were skewed.
    expect(ahead!.localNow - behind!.localNow).toBeGreaterThan(9_000)
    // Capacity 20 at 1/s: 80 calls within a second or two admit 20 plus what refilled meanwhile.
    const admitted = ahead!.admitted + behind!.admitted
    expect(admitted).toBeGreaterThanOrEqual(20)
    expect(admitted).toBeLessThanOrEqual(23)
    // A denied call's wait is measured on the Redis clock: the bucket is empty, so the next unit is
    // at most one second away for both processes, never 5 s more or less.
    for (const r of [...ahead!.retries, ...behind!.retries]) {
      expect(r.retryAfterMs).toBeGreaterThan(0)
      expect(r.retryAfterMs).toBeLessThanOrEqual(1_000)
    }
    const client = new Redis(server.url)
    const limiter = new Limiter({
      store: new RedisStore({ client }),
      policy: 'skew',
      limits: limitsFor('skewBucket'),
    })
    const ttl = await client.pttl(limiter.keysFor('shared').state)
    client.disconnect()
    // The key lives until the bucket is full again: about 20 s, not 15 or 25.
    expect(ttl).toBeGreaterThan(17_000)
    expect(ttl).toBeLessThanOrEqual(20_000)
  })
})

describe('RedisStore survives losing its script cache', () => {
  let server: RedisServer
  beforeAll(async () => {
    server = await startRedis()
  })
  afterAll(async () => {
    await server.stop()
  })

  it('SCRIPT FLUSH in the middle of a run: no errors, no double counting', async () => {
    const client = new Redis(server.url)
    const admin = new Redis(server.url)
    const limiter = new Limiter({
      store: new RedisStore({ client }),
      policy: 'flush',
      limits: {
        count: fixedWindow({ limit: 1_000_000, windowMs: 3_600_000 }),
        bucket: tokenBucket({ capacity: 1_000, refillPerSecond: 1e-6 }),
      },
    })
    let calls = 0
    for (let round = 0; round < 10; round++) {
      const ds = await Promise.all(Array.from({ length: 150 }, () => limiter.consume('s')))
      calls += ds.length
      expect(ds.filter((d) => d.allowed).length).toBe(round < 6 ? 150 : round === 6 ? 100 : 0)
      await admin.script('FLUSH')
    }
    const state = await limiter.peek('s', { requests: 0 })
    expect(state.limits[0]!.remaining).toBe(1_000_000 - 1_000)
    expect(state.limits[1]!.remaining).toBe(0)
    expect(calls).toBe(1_500)
    client.disconnect()
    admin.disconnect()
  })

  it('a restarted Redis (empty, no scripts) is used again without errors', async () => {
    const client = new Redis(server.url)
    const limiter = new Limiter({
      store: new RedisStore({ client }),
      policy: 'restart',
      limits: { count: fixedWindow({ limit: 100, windowMs: 3_600_000 }) },
    })
    expect((await limiter.consume('s')).limits[0]!.remaining).toBe(99)
    await server.restart()
    // ioredis reconnects by itself; the first call may race the reconnect, so wait for it.
    await new Promise<void>((resolve) =>
      client.status === 'ready' ? resolve() : client.once('ready', resolve),
    )
    const d = await limiter.consume('s')
    expect(d.allowed).toBe(true)
    expect(d.limits[0]!.remaining).toBe(99) // state was lost with the restart; the script was reloaded
    client.disconnect()
  })
})

describe('RedisStore refuses state it did not write', () => {
  let server: RedisServer
  beforeAll(async () => {
    server = await startRedis()
  })
  afterAll(async () => {
    await server.stop()
  })

  it('a state key holding a value of the wrong size fails that op (and only it) instead of reading as full', async () => {
    const client = new Redis(server.url)
    const limiter = new Limiter({
      store: new RedisStore({ client }),
      policy: 'foreign',
      limits: { bucket: tokenBucket({ capacity: 5, refillPerSecond: 1e-6 }) },
    })
    for (let i = 0; i < 5; i++) expect((await limiter.consume('s')).allowed).toBe(true)
    // Text where the store keeps packed doubles: an older layout or another writer.
    await client.set(limiter.keysFor('s').state, '1795766494855970', 'PX', 60_000)
    const [bad, good] = await Promise.allSettled([limiter.consume('s'), limiter.consume('other')])
    expect(bad.status).toBe('rejected')
    expect(String((bad as PromiseRejectedResult).reason)).toMatch(/state key holds 16 bytes/)
    expect(good.status === 'fulfilled' && good.value.allowed).toBe(true)
    client.disconnect()
  })
})
