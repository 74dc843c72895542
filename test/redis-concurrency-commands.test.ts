import { describe, expect, it } from 'vitest'
import { concurrency, Limiter, tokenBucket } from '../src/index.js'
import { commandsOf } from './helpers/command-stats.js'
import { redisStoreFixture } from './helpers/redis-store-fixture.js'

const redis = redisStoreFixture()

const LEASE_MS = 600_000

function limiter(policy: string, leaseMs = LEASE_MS): Limiter {
  return new Limiter({
    store: redis.store,
    policy,
    limits: {
      burst: tokenBucket({ capacity: 1e9, refillPerSecond: 1e9 }),
      inflight: concurrency({ limit: 100, leaseMs }),
    },
  })
}

describe('a concurrency limit on Redis', () => {
  it('reserves and settles by counts and ranks: no score read (no ZRANGE … WITHSCORES), no EXISTS', async () => {
    const l = limiter('concurrency-commands')
    await (await l.reserve('warm-up')).settle({ requests: 1 })
    const counts = await commandsOf(redis.admin, async () => {
      for (let i = 0; i < 20; i++) {
        const r = await l.reserve(`s${i % 4}`)
        expect(r.decision.allowed).toBe(true)
        await r.settle({ requests: 1 })
      }
    })
    expect(counts.fcall ?? counts.evalsha).toBe(40)
    expect(counts.exists ?? 0).toBe(0)
    expect(counts.zrange ?? 0).toBe(0)
    expect(counts.zrangebyscore ?? 0).toBe(0)
    expect(counts.zcard).toBe(40)
    // Each write changes the set and sets the TTL while a lease is left; with no lease expired
    // there is nothing to trim, and no trim is sent.
    expect(counts.zremrangebyscore ?? 0).toBe(0)
    expect(counts.zadd).toBe(20)
    expect(counts.zrem).toBe(20)
  })

  it('keeps the key until its last live lease expires, and drops it with the last lease', async () => {
    const l = limiter('concurrency-ttl')
    const key = l.keysFor('alice').limits[1]!
    const first = await l.reserve('alice')
    const pttl = await redis.admin.pttl(key)
    expect(pttl).toBeGreaterThan(LEASE_MS - 5_000)
    expect(pttl).toBeLessThanOrEqual(LEASE_MS)
    const second = await l.reserve('alice')
    expect(await redis.admin.zcard(key)).toBe(2)
    // After a release the TTL is still the last live lease's.
    const scores = (await redis.admin.zrange(key, '0', '-1', 'WITHSCORES')).filter((_, i) => i % 2 === 1)
    await second.settle({ requests: 1 })
    const [time] = await redis.admin.time()
    const left = Number(scores[0]) - Number(time) * 1000
    const after = await redis.admin.pttl(key)
    expect(Math.abs(after - left)).toBeLessThan(2_000)
    expect(await redis.admin.zcard(key)).toBe(1)
    await first.settle({ requests: 1 })
    expect(await redis.admin.exists(key)).toBe(0)
  })

  it('trims leases that expired unsettled at the next write, and only then', async () => {
    // Two limiters of one policy whose leases differ in length share the key: a short lease
    // expires while a long one keeps the key alive.
    const short = limiter('concurrency-trim', 50)
    const long = limiter('concurrency-trim')
    const key = short.keysFor('bob').limits[1]!
    expect(long.keysFor('bob').limits[1]).toBe(key)
    await short.reserve('bob')
    await long.reserve('bob')
    expect(await redis.admin.zcard(key)).toBe(2)
    // The short lease expires, never settled (a crashed caller).
    await new Promise((resolve) => setTimeout(resolve, 120))
    const counts = await commandsOf(redis.admin, async () => {
      const r = await long.reserve('bob')
      // The expired lease counts for nothing.
      expect(r.decision.limits.find((s) => s.name === 'inflight')?.remaining).toBe(98)
    })
    expect(counts.zremrangebyscore).toBe(1)
    expect(await redis.admin.zcard(key)).toBe(2)
  })

  it('with 16 leases held, a reservation and a settlement read no score, and report the latest expiry', async () => {
    const l = limiter('concurrency-many')
    const held: Awaited<ReturnType<Limiter['reserve']>>[] = []
    for (let i = 0; i < 16; i++) held.push(await l.reserve('carol'))
    const counts = await commandsOf(redis.admin, async () => {
      const r = await l.reserve('carol')
      const inflight = r.decision.limits.find((s) => s.name === 'inflight')!
      expect(inflight.remaining).toBe(100 - 17)
      // The latest lease is this one: it resets when this lease expires.
      expect(inflight.resetMs).toBeGreaterThan(LEASE_MS - 5_000)
      expect(inflight.resetMs).toBeLessThanOrEqual(LEASE_MS + 1)
      // An older lease released: the latest expiry is unchanged.
      await held[0]!.settle({ requests: 1 })
    })
    expect(counts.zrange ?? 0).toBe(0)
    expect(counts.zrangebyscore ?? 0).toBe(0)
    for (const r of held.slice(1)) await r.settle({ requests: 1 })
  })

  it('a reservation denied for lack of room reports when the soonest live lease frees one', async () => {
    const l = new Limiter({
      store: redis.store,
      policy: 'concurrency-full',
      limits: { inflight: concurrency({ limit: 2, leaseMs: LEASE_MS }) },
    })
    const key = l.keysFor('erin').limits[0]!
    await l.reserve('erin')
    await l.reserve('erin')
    const [soonest] = (await redis.admin.zrange(key, '0', '0', 'WITHSCORES')).slice(1)
    const denied = await l.reserve('erin')
    expect(denied.decision.allowed).toBe(false)
    const [seconds, micros] = await redis.admin.time()
    const expected = Number(soonest) - (Number(seconds) * 1000 + Number(micros) / 1000)
    expect(Math.abs(denied.decision.retryAfterMs - expected)).toBeLessThan(2_000)
    expect(denied.decision.retryAfterMs).toBeLessThanOrEqual(LEASE_MS)
  })
})
