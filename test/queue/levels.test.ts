/**
 * Composed decisions (compose(): a key's, its team's, a deployment's limits) wait in the queue of
 * the level that refused, and a priority changes the order among waiters; on a MemoryStore and on
 * a real redis-server.
 */
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type ComposedDecision, compose } from '../../src/compose.js'
import { calendar, fixedWindow, tokenBucket } from '../../src/core/limits.js'
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

describe.each(stores)('composed levels wait (%s)', (_name, makeStore) => {
  const limiterOf = (store: Store, limits: ConstructorParameters<typeof Limiter>[0]['limits']) =>
    new Limiter({ store, policy: `lvl${++policyCount}`, limits })
  const roomy = { calls: fixedWindow({ limit: 1_000_000, windowMs: 3_600_000 }) }

  it('a burst of two keys on their team limit waits and is admitted as room appears, never above it', async () => {
    const store = makeStore()
    const keys = limiterOf(store, roomy)
    const PER_WINDOW = 4
    const team = limiterOf(store, { calls: fixedWindow({ limit: PER_WINDOW, windowMs: 1000 }) })
    const levelsOf = (key: string) =>
      compose([
        { limiter: keys, subject: key },
        { limiter: team, subject: 'team:research' },
      ])
    const a = levelsOf('key:a')
    const b = levelsOf('key:b')
    const order: string[] = []
    const calls = Array.from({ length: 12 }, (_, i) => {
      const [who, composite] = i % 2 === 0 ? ['a', a] : ['b', b]
      return composite.consume(undefined, { maxWaitMs: 20_000 }).then((d) => {
        if (d.allowed) order.push(who)
        return d
      })
    })
    const decisions: ComposedDecision[] = await Promise.all(calls)
    // Every call admitted (a team limit refused them, and it frees every second) …
    expect(decisions.every((d) => d.allowed)).toBe(true)
    // (At least 12 - 2 × 4: the first tries may straddle a window's end.)
    expect(decisions.filter((d) => d.waitedMs !== undefined).length).toBeGreaterThanOrEqual(
      12 - 2 * PER_WINDOW,
    )
    // … never more than the team's limit in one of its windows (the store's own clock) …
    const perWindow = new Map<number, number>()
    for (const d of decisions) {
      const w = Math.floor(d.now / 1000)
      perWindow.set(w, (perWindow.get(w) ?? 0) + 1)
    }
    for (const n of perWindow.values()) expect(n).toBeLessThanOrEqual(PER_WINDOW)
    // … and the team's count is the admissions the callers saw; nothing is left in the queue.
    const last = await team.peek('team:research', { requests: 0 })
    const lastWindow = Math.floor(last.now / 1000)
    expect(perWindow.get(lastWindow) ?? 0).toBe(PER_WINDOW - last.limits[0]!.remaining)
    expect(await queuesOf(store).length(team.keysFor('team:research').queue)).toBe(0)
    // Both keys are served while both wait (fair order among the team's keys).
    expect(order.slice(0, 8).filter((w) => w === 'b').length).toBeGreaterThanOrEqual(2)
  })

  it("waits on a level's rate limit but never on its budget, a block or a cost that can never fit", async () => {
    const store = makeStore()
    const keys = limiterOf(store, roomy)
    const rate = limiterOf(store, { burst: tokenBucket({ capacity: 1, refillPerSecond: 2 }) })
    const rated = compose([
      { limiter: keys, subject: 'key:a' },
      { limiter: rate, subject: 'team:t' },
    ])
    expect((await rated.consume()).allowed).toBe(true)
    const waited = await rated.consume(undefined, { maxWaitMs: 10_000 })
    expect(waited.allowed).toBe(true)
    expect(waited.waitedMs).toBeGreaterThanOrEqual(0)

    const budget = limiterOf(store, { day: calendar({ limit: 1, period: 'day', unit: 'requests' }) })
    const spent = compose([
      { limiter: keys, subject: 'key:a' },
      { limiter: budget, subject: 'team:t' },
    ])
    await spent.consume()
    const refused = await spent.consume(undefined, { maxWaitMs: 100_000_000 })
    expect(refused.allowed).toBe(false)
    expect(refused.deniedLevel).toBe(1)
    expect(refused.waitedMs).toBeUndefined()

    const never = await rated.consume({ requests: 5 }, { maxWaitMs: 10_000 })
    expect(never.allowed).toBe(false)
    expect(never.retryAfterMs).toBe(Number.POSITIVE_INFINITY)
    expect(never.waitedMs).toBeUndefined()

    const slow = limiterOf(store, { slow: tokenBucket({ capacity: 1, refillPerSecond: 0.01 }) })
    const beyond = compose([
      { limiter: keys, subject: 'key:a' },
      { limiter: slow, subject: 'team:t' },
    ])
    await beyond.consume()
    const late = await beyond.consume(undefined, { maxWaitMs: 1000 })
    expect(late.allowed).toBe(false)
    expect(late.waitedMs).toBeUndefined()

    const blocking = new Limiter({
      store,
      policy: `lvl${++policyCount}`,
      limits: { burst: tokenBucket({ capacity: 1, refillPerSecond: 0.5 }) },
      block: { after: 1, withinMs: 60_000, durationsMs: [3_600_000] },
    })
    const blocked = compose([
      { limiter: keys, subject: 'key:a' },
      { limiter: blocking, subject: 'team:t' },
    ])
    await blocked.consume()
    expect((await blocked.consume()).blocked).toBe(true)
    const still = await blocked.consume(undefined, { maxWaitMs: 10_000 })
    expect(still.blocked).toBe(true)
    expect(still.waitedMs).toBeUndefined()

    // A level that must not be waited on (queue: false) refuses at once, naming itself.
    const shared = limiterOf(store, { burst: tokenBucket({ capacity: 1, refillPerSecond: 2 }) })
    const elsewhere = compose([
      { limiter: keys, subject: 'key:a' },
      { limiter: shared, subject: 'deployment:d', queue: false },
    ])
    await elsewhere.consume()
    const moved = await elsewhere.consume(undefined, { maxWaitMs: 10_000 })
    expect(moved.allowed).toBe(false)
    expect(moved.deniedLevel).toBe(1)
    expect(moved.waitedMs).toBeUndefined()
  })

  it('a newcomer with room on its own levels does not pass those waiting on a shared level', async () => {
    const store = makeStore()
    const keys = limiterOf(store, roomy)
    const deployment = limiterOf(store, { burst: tokenBucket({ capacity: 1, refillPerSecond: 2 }) })
    const via = (key: string) =>
      compose([
        { limiter: keys, subject: key },
        { limiter: deployment, subject: 'deployment:d' },
      ])
    expect((await via('key:heavy').consume()).allowed).toBe(true)
    const order: string[] = []
    const heavy = Array.from({ length: 4 }, () =>
      via('key:heavy')
        .consume(undefined, { maxWaitMs: 20_000 })
        .then((d) => {
          order.push('heavy')
          return d
        }),
    )
    const queue = deployment.keysFor('deployment:d').queue
    while ((await queuesOf(store).length(queue)) < 4) await new Promise((r) => setTimeout(r, 5))
    const light = await via('key:light').consume(undefined, { maxWaitMs: 20_000 })
    order.push('light')
    expect(light.allowed).toBe(true)
    // The light tenant waited on the deployment's queue, ahead of the heavy tenant's backlog.
    expect(light.waitedMs).toBeGreaterThanOrEqual(0)
    await Promise.all(heavy)
    expect(order.indexOf('light')).toBeLessThanOrEqual(2)
  })

  it('gives the place back when the signal aborts', async () => {
    const store = makeStore()
    const keys = limiterOf(store, roomy)
    const team = limiterOf(store, { burst: tokenBucket({ capacity: 1, refillPerSecond: 0.2 }) })
    const c = compose([
      { limiter: keys, subject: 'key:a' },
      { limiter: team, subject: 'team:t' },
    ])
    await c.consume()
    const controller = new AbortController()
    const waiting = c.consume(undefined, { maxWaitMs: 20_000, signal: controller.signal })
    const queue = team.keysFor('team:t').queue
    while ((await queuesOf(store).length(queue)) < 1) await new Promise((r) => setTimeout(r, 5))
    controller.abort(new Error('client gone'))
    await expect(waiting).rejects.toThrow('client gone')
    expect(await queuesOf(store).length(queue)).toBe(0)
  })

  it('reserves waiting too, and the reservation settles on every level', async () => {
    const store = makeStore()
    const keys = limiterOf(store, roomy)
    const team = limiterOf(store, { burst: tokenBucket({ capacity: 1, refillPerSecond: 2 }) })
    const c = compose([
      { limiter: keys, subject: 'key:a' },
      { limiter: team, subject: 'team:t' },
    ])
    await c.consume()
    const r = await c.reserve({ requests: 1 }, { maxWaitMs: 10_000 })
    expect(r.allowed).toBe(true)
    expect(r.decision.waitedMs).toBeGreaterThanOrEqual(0)
    const settled = await r.settle({ requests: 1 })
    expect(settled.allowed).toBe(true)
  })

  it('admits a high-priority request ahead of normal ones of its flow waiting on the same capacity', async () => {
    const store = makeStore()
    const limiter = limiterOf(store, { burst: tokenBucket({ capacity: 1, refillPerSecond: 2 }) })
    await limiter.consume('s')
    const order: string[] = []
    const wait = (name: string, priority?: 'high' | 'low') =>
      limiter
        .consume('s', undefined, { maxWaitMs: 20_000, flow: 'tenant', ...(priority && { priority }) })
        .then((d) => {
          expect(d.allowed).toBe(true)
          order.push(name)
        })
    const queue = limiter.keysFor('s').queue
    const normal = [wait('n1'), wait('n2'), wait('n3')]
    while ((await queuesOf(store).length(queue)) < 3) await new Promise((r) => setTimeout(r, 5))
    const high = wait('high', 'high')
    await Promise.all([...normal, high])
    // n1 may already have been the head trying when the high one came; the high one passes the rest.
    expect(order.indexOf('high')).toBeLessThanOrEqual(1)
    await expect(
      limiter.consume('s', undefined, { maxWaitMs: 10, priority: 'urgent' as never }),
    ).rejects.toThrow(/priority must be "high", "normal" or "low"/)
  })
})
