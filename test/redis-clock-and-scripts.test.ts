import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fixedWindow, type LimitDefinition, tokenBucket } from '../src/core/limits.js'
import { Limiter } from '../src/limiter.js'
import { RedisStore } from '../src/store/redis/store.js'
import { limitsFor } from './fixtures/worker-protocol.js'
import {
  type RedisServer,
  scriptsOnlyClient,
  startRedis,
  startRedisWithoutFunctions,
} from './helpers/redis-server.js'
import { runWorkers } from './helpers/workers.js'

// One redis-server for the whole file (one test restarts it; every test makes its own clients and keys).
let server: RedisServer
beforeAll(async () => {
  server = await startRedis()
})
afterAll(async () => {
  await server.stop()
})

/** A limiter on a RedisStore over `client` (which the test disconnects itself). */
function limiterOn(client: Redis, policy: string, limits: Record<string, LimitDefinition>): Limiter {
  return new Limiter({ store: new RedisStore({ client }), policy, limits })
}

describe('RedisStore uses only the Redis clock', () => {
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
    const limiter = limiterOn(client, 'skew', limitsFor('skewBucket'))
    const ttl = await client.pttl(limiter.keysFor('shared').state)
    client.disconnect()
    // The key lives until the bucket is full again: about 20 s, not 15 or 25.
    expect(ttl).toBeGreaterThan(17_000)
    expect(ttl).toBeLessThanOrEqual(20_000)
  })
})

describe('RedisStore survives losing its script cache', () => {
  it('SCRIPT FLUSH in the middle of a run: no errors, no double counting', async () => {
    const client = new Redis(server.url)
    const admin = new Redis(server.url)
    const limiter = limiterOn(client, 'flush', {
      count: fixedWindow({ limit: 1_000_000, windowMs: 3_600_000 }),
      bucket: tokenBucket({ capacity: 1_000, refillPerSecond: 1e-6 }),
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

  it('FUNCTION FLUSH in the middle of a run: the library is loaded again, nothing counted twice', async () => {
    const client = new Redis(server.url)
    const admin = new Redis(server.url)
    const limiter = limiterOn(client, 'fnflush', {
      bucket: tokenBucket({ capacity: 1_000, refillPerSecond: 1e-6 }),
    })
    await admin.call('CONFIG', 'RESETSTAT')
    let allowed = 0
    for (let round = 0; round < 8; round++) {
      const ds = await Promise.all(Array.from({ length: 150 }, () => limiter.consume('s')))
      allowed += ds.filter((d) => d.allowed).length
      await admin.call('FUNCTION', 'FLUSH')
    }
    expect(allowed).toBe(1_000)
    expect((await limiter.peek('s', { requests: 0 })).limits[0]!.remaining).toBe(0)
    // Each flush cost one failed call and one load: the library really was gone and came back.
    const stats = await admin.info('commandstats')
    expect(Number(/cmdstat_function\|load:calls=(\d+)/.exec(stats)?.[1])).toBeGreaterThanOrEqual(8)
    client.disconnect()
    admin.disconnect()
  })

  it('a restarted Redis (empty, no scripts) is used again without errors', async () => {
    const client = new Redis(server.url)
    const limiter = limiterOn(client, 'restart', { count: fixedWindow({ limit: 100, windowMs: 3_600_000 }) })
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
  it('a state key holding a value of the wrong size fails that op (and only it) instead of reading as full', async () => {
    const client = new Redis(server.url)
    const limiter = limiterOn(client, 'foreign', {
      bucket: tokenBucket({ capacity: 5, refillPerSecond: 1e-6 }),
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

describe('RedisStore with a large batch', () => {
  it('3,000 ops in one script call (keys read and results packed in chunks) decide exactly', async () => {
    const client = new Redis(server.url)
    const admin = new Redis(server.url)
    const limiter = new Limiter({
      store: new RedisStore({ client, maxBatch: 5_000 }),
      policy: 'big',
      limits: {
        window: fixedWindow({ limit: 3, windowMs: 3_600_000 }),
        tokens: tokenBucket({ capacity: 1e9, refillPerSecond: 1, unit: 'tokens' }),
      },
      block: { after: 100 },
      alertAt: 0.5,
    })
    await client.ping()
    // 1,000 subjects charged once, then 3 more calls each, all issued in one turn: every subject's
    // first call of the big batch reads the state its first call left (through the batch's MGET).
    const first = await Promise.all(
      Array.from({ length: 1_000 }, (_, i) => limiter.consume(`s${i}`, { tokens: 7 })),
    )
    expect(first.every((d) => d.allowed)).toBe(true)
    await admin.config('RESETSTAT')
    const calls = Array.from({ length: 3_000 }, (_, i) => limiter.consume(`s${i % 1_000}`, { tokens: 7 }))
    const ds = await Promise.all(calls)
    expect(ds.filter((d) => d.allowed).length).toBe(2_000)
    for (let i = 0; i < 1_000; i++) {
      const mine = ds.filter((_, j) => j % 1_000 === i)
      expect(mine.map((d) => d.allowed)).toEqual([true, true, false])
      expect(mine[1]!.limits[1]!.remaining).toBe(1e9 - 21)
      expect(mine.flatMap((d) => d.alerts.map((a) => a.name))).toEqual(['window'])
    }
    const stats = await admin.info('commandstats')
    expect(Number(/cmdstat_fcall:calls=(\d+)/.exec(stats)?.[1])).toBe(1)
    client.disconnect()
    admin.disconnect()
  })
})

describe('RedisStore given a reply it cannot read', () => {
  it('fails every op of that batch instead of leaving them waiting', async () => {
    const client = new Redis(server.url)
    const limiter = limiterOn(client, 'garbled', { bucket: tokenBucket({ capacity: 5, refillPerSecond: 1 }) })
    // A truncated reply, as a proxy or a foreign script of the same name could send.
    ;(client as unknown as { callBuffer: () => Promise<unknown[]> }).callBuffer = () =>
      Promise.resolve([Buffer.alloc(12)])
    const outcomes = await Promise.allSettled([limiter.consume('a'), limiter.consume('b')])
    expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'rejected'])
    client.disconnect()
  })
})

describe('RedisStore on a Redis without Functions', () => {
  it('falls back to scripts (EVALSHA) and decides exactly the same', async () => {
    // FCALL and FUNCTION renamed away: what a Redis before 7.0 answers ("unknown command").
    const old = await startRedisWithoutFunctions()
    const client = new Redis(old.url)
    const limiter = limiterOn(client, 'nofn', { bucket: tokenBucket({ capacity: 5, refillPerSecond: 1e-6 }) })
    const first = await Promise.all(Array.from({ length: 8 }, () => limiter.consume('s')))
    const later = await Promise.all(Array.from({ length: 4 }, () => limiter.consume('s')))
    expect([...first, ...later].map((d) => d.allowed)).toEqual([
      ...Array(5).fill(true),
      ...Array(7).fill(false),
    ])
    const stats = await client.info('commandstats')
    expect(
      Number(/cmdstat_evalsha:calls=(\d+)/.exec(stats)?.[1] ?? /cmdstat_eval:calls=(\d+)/.exec(stats)?.[1]),
    ).toBeGreaterThan(0)
    expect(stats).not.toMatch(/cmdstat_fcall:/)
    client.disconnect()
    await old.stop()
  })
  it('falls back to scripts for a user whose ACL denies Functions', async () => {
    const admin = new Redis(server.url)
    const client = await scriptsOnlyClient(server, 'scripts-only')
    const limiter = limiterOn(client, 'acl', { bucket: tokenBucket({ capacity: 3, refillPerSecond: 1e-6 }) })
    const ds = await Promise.all(Array.from({ length: 5 }, () => limiter.consume('s')))
    expect(ds.map((d) => d.allowed)).toEqual([true, true, true, false, false])
    expect((await limiter.consume('s')).allowed).toBe(false)
    client.disconnect()
    await admin.call('ACL', 'DELUSER', 'scripts-only')
    admin.disconnect()
  })
})
