import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { calendar, tokenBucket } from '../../src/core/limits.js'
import { Limiter } from '../../src/limiter.js'
import { MemoryStore } from '../../src/store/memory.js'
import { RedisStore } from '../../src/store/redis/store.js'
import type { Store } from '../../src/store/types.js'
import { queuesOf } from '../../src/waiting.js'
import { type RedisServer, startRedis } from '../helpers/redis-server.js'

let server: RedisServer
let admin: Redis
beforeAll(async () => {
  server = await startRedis()
  admin = new Redis(server.url)
})
afterAll(async () => {
  admin.disconnect()
  await server.stop()
})

let policyCount = 0
const stores: [string, () => Store][] = [
  ['MemoryStore', () => new MemoryStore()],
  ['RedisStore', () => new RedisStore({ client: admin })],
]

describe.each(stores)('waiting in a queue (%s)', (_name, makeStore) => {
  const limiterOf = (limits: ConstructorParameters<typeof Limiter>[0]['limits']) =>
    new Limiter({ store: makeStore(), policy: `wait${++policyCount}`, limits })

  it('admits a request refused by a rate limit once it fits, within maxWaitMs', async () => {
    const limiter = limiterOf({ burst: tokenBucket({ capacity: 1, refillPerSecond: 1 }) })
    expect((await limiter.consume('s')).allowed).toBe(true)
    const refused = await limiter.consume('s')
    expect(refused.allowed).toBe(false)
    const waited = await limiter.consume('s', undefined, { maxWaitMs: 3000 })
    expect(waited.allowed).toBe(true)
    expect(waited.waitedMs).toBeGreaterThanOrEqual(0)
    // It took the one token that refilled, and left none.
    expect(waited.limits[0]!.remaining).toBe(0)
    expect(await queuesOf(limiter.store).length(limiter.keysFor('s').queue)).toBe(0)
  })

  it('answers at once with the refusal when the retry time is beyond maxWaitMs', async () => {
    const limiter = limiterOf({ slow: tokenBucket({ capacity: 1, refillPerSecond: 0.01 }) })
    await limiter.consume('s')
    const refused = await limiter.consume('s', undefined, { maxWaitMs: 1000 })
    expect(refused.allowed).toBe(false)
    expect(refused.retryAfterMs).toBeGreaterThan(1000)
    expect(refused.waitedMs).toBeUndefined()
  })

  it('never waits on a budget, a block or a cost that can never fit', async () => {
    const budget = limiterOf({
      day: calendar({ limit: 1, period: 'day', unit: 'requests' }),
    })
    await budget.consume('s')
    const spent = await budget.consume('s', undefined, { maxWaitMs: 100_000_000 })
    expect(spent.allowed).toBe(false)
    expect(spent.waitedMs).toBeUndefined()
    const small = limiterOf({ burst: tokenBucket({ capacity: 2, refillPerSecond: 1 }) })
    const never = await small.consume('s', { requests: 5 }, { maxWaitMs: 10_000 })
    expect(never.allowed).toBe(false)
    expect(never.retryAfterMs).toBe(Number.POSITIVE_INFINITY)
    const blocking = new Limiter({
      store: makeStore(),
      policy: `wait${++policyCount}`,
      limits: { burst: tokenBucket({ capacity: 1, refillPerSecond: 0.5 }) },
      block: { after: 1, within: '1m', durations: ['1h'] },
    })
    await blocking.consume('s')
    expect((await blocking.consume('s')).blocked).toBe(true)
    const blocked = await blocking.consume('s', undefined, { maxWaitMs: 10_000 })
    expect(blocked.blocked).toBe(true)
    expect(blocked.waitedMs).toBeUndefined()
  })

  it('gives the refusal it would have had when maxWaitMs passes, and leaves the queue', async () => {
    const limiter = limiterOf({ burst: tokenBucket({ capacity: 1, refillPerSecond: 2 }) })
    await limiter.consume('s')
    // The first waiter gets the token that refills in 500 ms; the second cannot get one in 600 ms.
    const [a, b] = await Promise.all([
      limiter.consume('s', undefined, { maxWaitMs: 600 }),
      limiter.consume('s', undefined, { maxWaitMs: 600 }),
    ])
    expect([a.allowed, b.allowed].sort()).toEqual([false, true])
    const refused = a.allowed ? b : a
    expect(refused.deniedBy).toBe('burst')
    expect(refused.waitedMs).toBeGreaterThan(0)
    expect(await queuesOf(limiter.store).length(limiter.keysFor('s').queue)).toBe(0)
  })

  it('cancels a wait when its signal aborts, giving its place back', async () => {
    const limiter = limiterOf({ burst: tokenBucket({ capacity: 1, refillPerSecond: 0.5 }) })
    await limiter.consume('s')
    const controller = new AbortController()
    const waiting = limiter.consume('s', undefined, { maxWaitMs: 5000, signal: controller.signal })
    const queue = limiter.keysFor('s').queue
    const queues = queuesOf(limiter.store)
    while ((await queues.length(queue)) === 0) await new Promise((r) => setTimeout(r, 5))
    controller.abort(new Error('client went away'))
    await expect(waiting).rejects.toThrow('client went away')
    expect(await queues.length(queue)).toBe(0)
  })

  it('refuses at once beyond maxQueued per flow and in total', async () => {
    const limiter = limiterOf({ burst: tokenBucket({ capacity: 1, refillPerSecond: 1 }) })
    await limiter.consume('s')
    const options = { maxWaitMs: 1200, maxQueued: 2, maxQueuedPerFlow: 1 }
    const first = limiter.consume('s', undefined, { ...options, flow: 'a' })
    const queue = limiter.keysFor('s').queue
    const queues = queuesOf(limiter.store)
    while ((await queues.length(queue)) === 0) await new Promise((r) => setTimeout(r, 5))
    const sameFlow = await limiter.consume('s', undefined, { ...options, flow: 'a' })
    expect(sameFlow.allowed).toBe(false)
    expect(sameFlow.waitedMs).toBeUndefined()
    const second = limiter.consume('s', undefined, { ...options, flow: 'b' })
    while ((await queues.length(queue)) < 2) await new Promise((r) => setTimeout(r, 5))
    const full = await limiter.consume('s', undefined, { ...options, flow: 'c' })
    expect(full.allowed).toBe(false)
    expect(full.waitedMs).toBeUndefined()
    const results = await Promise.all([first, second])
    // One token refills within the wait: exactly one of the two waiters gets it.
    expect(results.filter((d) => d.allowed)).toHaveLength(1)
  })

  it('keeps the head in its place while it waits longer than its lease for the capacity', async () => {
    const limiter = limiterOf({ burst: tokenBucket({ capacity: 1, refillPerSecond: 1 / 1.5 }) })
    await limiter.consume('s')
    const options = { maxWaitMs: 2500, leaseMs: 300 }
    const first = limiter.consume('s', undefined, { ...options, flow: 'a' })
    const queue = limiter.keysFor('s').queue
    const queues = queuesOf(limiter.store)
    while ((await queues.length(queue)) === 0) await new Promise((r) => setTimeout(r, 5))
    const second = limiter.consume('s', undefined, { ...options, flow: 'b' })
    // One token refills in 1.5 s, the next 1.5 s later: the head (first) gets it, the second none.
    expect((await first).allowed).toBe(true)
    expect((await second).allowed).toBe(false)
  })

  it('waits for a reservation as well, and settles it', async () => {
    const limiter = limiterOf({ burst: tokenBucket({ capacity: 1, refillPerSecond: 10 }) })
    await limiter.consume('s')
    const reservation = await limiter.reserve('s', undefined, { maxWaitMs: 2000 })
    expect(reservation.allowed).toBe(true)
    expect(reservation.decision.waitedMs).toBeGreaterThanOrEqual(0)
    await reservation.cancel()
    expect((await limiter.consume('s')).allowed).toBe(true)
  })

  it('rejects bad wait options naming the option', async () => {
    const limiter = limiterOf({ burst: tokenBucket({ capacity: 1, refillPerSecond: 1 }) })
    await expect(limiter.consume('s', undefined, { maxWaitMs: -1 })).rejects.toThrow(/maxWaitMs/)
    await expect(limiter.consume('s', undefined, { maxWaitMs: 10, weight: 0 })).rejects.toThrow(/weight/)
    await expect(limiter.consume('s', undefined, { maxWaitMs: 10, leaseMs: 1.5 })).rejects.toThrow(/leaseMs/)
  })
})
