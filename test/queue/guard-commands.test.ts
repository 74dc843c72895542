import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Limiter, tokenBucket } from '../../src/index.js'
import { queuesOf } from '../../src/store/queues.js'
import { QUEUES_BUSY_KEY } from '../../src/store/redis/encode.js'
import { RedisStore } from '../../src/store/redis/store.js'
import { commandsOf } from '../helpers/command-stats.js'
import { type RedisClusterServer, startRedisCluster } from '../helpers/redis-cluster.js'
import { redisStoreFixture } from '../helpers/redis-store-fixture.js'

const redis = redisStoreFixture()

describe('a queue nobody waits in, on Redis', () => {
  it('sends the same commands as the same decision without a queue', async () => {
    const limiter = new Limiter({
      store: redis.store,
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
    const plain = await commandsOf(redis.admin, () => decisions())
    const queued = await commandsOf(redis.admin, () => decisions({ maxWaitMs: 1000 }))
    expect(plain.fcall ?? plain.evalsha).toBe(50)
    expect(queued).toEqual(plain)
  })

  it('keeps a marker while anyone waits: a newcomer is held back, and the marker goes with the last ticket', async () => {
    const queues = queuesOf(redis.store)
    const limiter = new Limiter({
      store: redis.store,
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
    expect(await redis.admin.exists(`${key}:on`)).toBe(1)
    // Room in the bucket, but someone waits: the first try is not decided.
    const held = await queues.first(limiter.opFor('consume', 'alice', [1], 'op-1'), key)
    expect(held.kind).toBe('wait')
    if (!ticket.queued) return
    expect(await queues.leave(key, ticket.ticket)).toBe(0)
    expect(await redis.admin.exists(`${key}:on`, key, `${key}:lease`, `${key}:meta`)).toBe(0)
    const ran = await queues.first(limiter.opFor('consume', 'alice', [1], 'op-2'), key)
    expect(ran.kind).toBe('ran')
  })
})

const TICKET = { flow: 'bob', weight: 1, leaseMs: 30_000, maxPerFlow: 10, maxTotal: 10 }

describe('the busy string on one Redis', () => {
  const limiter = () =>
    new Limiter({
      store: redis.store,
      policy: 'busy',
      limits: { burst: tokenBucket({ capacity: 100, refillPerSecond: 1 }) },
    })

  it('is what holds a newcomer back: one key for the batch, not the queue marker', async () => {
    const queues = queuesOf(redis.store)
    const l = limiter()
    const key = l.keysFor('carol').queue
    const ticket = await queues.enqueue(key, { ...TICKET, waiter: 'w1' })
    if (!ticket.queued) throw new Error('not queued')
    expect(await redis.admin.get(QUEUES_BUSY_KEY)).toContain(`\n${key}\n`)
    // Without the marker the busy string still holds the newcomer back...
    await redis.admin.del(`${key}:on`)
    expect((await queues.first(l.opFor('consume', 'carol', [1], 'op-1'), key)).kind).toBe('wait')
    // ...and a subject whose name starts with this one's is not held by it.
    expect(
      (await queues.first(l.opFor('consume', 'carol2', [1], 'op-2'), l.keysFor('carol2').queue)).kind,
    ).toBe('ran')
    expect(await queues.leave(key, ticket.ticket)).toBe(0)
    expect(await redis.admin.exists(QUEUES_BUSY_KEY)).toBe(0)
    expect((await queues.first(l.opFor('consume', 'carol', [1], 'op-3'), key)).kind).toBe('ran')
  })

  it('is rewritten when a lease outruns its entry, not at every change of the queue', async () => {
    const queues = queuesOf(redis.store)
    const key = limiter().keysFor('hank').queue
    const first = await queues.enqueue(key, { ...TICKET, waiter: 'w1', leaseMs: 5_000 })
    const listed = await redis.admin.get(QUEUES_BUSY_KEY)
    // A second ticket whose lease ends a little later: within the entry's slack, nothing to write.
    const second = await queues.enqueue(key, { ...TICKET, waiter: 'w2', leaseMs: 5_100 })
    expect(await redis.admin.get(QUEUES_BUSY_KEY)).toBe(listed)
    // One whose lease ends far later moves the entry's end.
    const third = await queues.enqueue(key, { ...TICKET, waiter: 'w3', leaseMs: 60_000 })
    const moved = await redis.admin.get(QUEUES_BUSY_KEY)
    expect(moved).not.toBe(listed)
    expect(Number(moved?.split('\n')[2])).toBeGreaterThan(Number(listed?.split('\n')[2]) + 50_000)
    for (const t of [first, second, third]) if (t.queued) await queues.leave(key, t.ticket)
    expect(await redis.admin.exists(QUEUES_BUSY_KEY)).toBe(0)
  })

  it('ignores an entry whose leases ended (an instance that died with its waiters)', async () => {
    const queues = queuesOf(redis.store)
    const l = limiter()
    const key = l.keysFor('dave').queue
    await redis.admin.set(QUEUES_BUSY_KEY, `\n${key}\n1000`, 'PX', 60_000)
    expect((await queues.first(l.opFor('consume', 'dave', [1], 'op-1'), key)).kind).toBe('ran')
    await redis.admin.set(QUEUES_BUSY_KEY, `\n${key}\n${Date.now() + 60_000}`, 'PX', 60_000)
    expect((await queues.first(l.opFor('consume', 'dave', [1], 'op-2'), key)).kind).toBe('wait')
    await redis.admin.del(QUEUES_BUSY_KEY)
  })

  it('past 256 queues at once, holds every newcomer for its queue, which lets it pass when empty', async () => {
    const queues = queuesOf(redis.store)
    const l = limiter()
    const tickets: [string, string][] = []
    for (let i = 0; i < 257; i++) {
      const key = l.keysFor(`many-${i}`).queue
      const t = await queues.enqueue(key, { ...TICKET, waiter: `w${i}` })
      if (!t.queued) throw new Error('not queued')
      tickets.push([key, t.ticket])
    }
    expect((await redis.admin.get(QUEUES_BUSY_KEY))?.startsWith('\n*\n')).toBe(true)
    const idle = l.keysFor('erin').queue
    expect((await queues.first(l.opFor('consume', 'erin', [1], 'op-1'), idle)).kind).toBe('wait')
    // Through its queue, which holds nobody: admitted at once.
    const d = await l.consume('erin', undefined, { maxWaitMs: 1000 })
    expect(d.allowed).toBe(true)
    for (const [key, ticket] of tickets) await queues.leave(key, ticket)
    expect(await redis.admin.exists(...tickets.flatMap(([key]) => [key, `${key}:on`]))).toBe(0)
    await redis.admin.del(QUEUES_BUSY_KEY)
  })
})

describe('a queue on a Redis Cluster', () => {
  let cluster: RedisClusterServer
  let clusterStore: RedisStore
  beforeAll(async () => {
    cluster = await startRedisCluster()
    clusterStore = new RedisStore({ nodes: cluster.nodes.map((n) => `redis://127.0.0.1:${n.port}`) })
    await clusterStore.whenReady()
  }, 60_000)
  afterAll(async () => {
    await clusterStore?.close()
    await cluster?.stop()
  })

  it("holds a newcomer back by the queue's own marker, and lets it pass when the queue empties", async () => {
    const queues = queuesOf(clusterStore)
    const l = new Limiter({
      store: clusterStore,
      policy: 'cluster-guard',
      limits: { burst: tokenBucket({ capacity: 100, refillPerSecond: 1 }) },
    })
    const key = l.keysFor('frank').queue
    const ticket = await queues.enqueue(key, { ...TICKET, waiter: 'w1' })
    if (!ticket.queued) throw new Error('not queued')
    expect((await queues.first(l.opFor('consume', 'frank', [1], 'op-1'), key)).kind).toBe('wait')
    expect((await queues.first(l.opFor('consume', 'gina', [1], 'op-2'), l.keysFor('gina').queue)).kind).toBe(
      'ran',
    )
    expect(await queues.leave(key, ticket.ticket)).toBe(0)
    expect((await queues.first(l.opFor('consume', 'frank', [1], 'op-3'), key)).kind).toBe('ran')
  })
})
