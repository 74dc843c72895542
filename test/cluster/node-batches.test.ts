/**
 * On a Redis Cluster, the ops of one event-loop turn are sent as one script call per master (a
 * node batch over many hash slots) rather than one per slot. What must hold: every op is decided
 * exactly once, and a node batch that names a key its node does not serve (a client whose slot
 * map is out of date) is refused before it writes anything and sent again one slot at a time —
 * nothing charged twice, nothing lost.
 */
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Decision, fixedWindow, Limiter, MemoryStore } from '../../src/index.js'
import { RedisStore } from '../../src/store/redis/store.js'
import { commandCallsIn, type RedisClusterServer, startRedisCluster } from '../helpers/redis-cluster.js'
import { CLIENT_KINDS, clusterClient } from '../helpers/store-clients.js'

const SUBJECTS = 600
const CAPACITY = 3
const HOT_SUBJECTS = 10
const HOT_CALLS = 40
const HOT_CAPACITY = 25

describe('node batches on a 3-node Redis Cluster', () => {
  let cluster: RedisClusterServer
  beforeAll(async () => {
    cluster = await startRedisCluster()
  })
  afterAll(async () => {
    await cluster?.stop()
  })

  async function scriptCalls(): Promise<{ calls: number; failed: number }> {
    let calls = 0
    let failed = 0
    for (const n of cluster.nodes) {
      const c = new Redis(n.url)
      const info = await c.info('commandstats')
      c.disconnect()
      calls += commandCallsIn(info, ['fcall'])
      failed += Number(/cmdstat_fcall:.*failed_calls=(\d+)/.exec(info)?.[1] ?? 0)
    }
    return { calls, failed }
  }

  /** The library loaded on every master (its first call finds none), then the counts reset. */
  async function resetStats(store: RedisStore): Promise<void> {
    await new Limiter({
      store,
      policy: 'warm',
      limits: { r: fixedWindow({ limit: 1, windowMs: 1_000 }) },
    }).peek('x')
    for (const n of cluster.nodes) {
      const c = new Redis(n.url)
      await c.config('RESETSTAT')
      c.disconnect()
    }
  }

  /** Each subject called CAPACITY + 2 times, every round of calls issued in one turn. */
  async function admittedPerSubject(store: RedisStore, policy: string): Promise<number[]> {
    const limiter = new Limiter({
      store,
      policy,
      limits: { r: fixedWindow({ limit: CAPACITY, windowMs: 600_000 }) },
    })
    const admitted = new Array<number>(SUBJECTS).fill(0)
    for (let round = 0; round < CAPACITY + 2; round++) {
      const decisions = await Promise.all(
        Array.from({ length: SUBJECTS }, (_, i) => limiter.consume(`s-${i}`)),
      )
      decisions.forEach((d, i) => {
        if (d.allowed) admitted[i]!++
      })
    }
    return admitted
  }

  it('a turn of ops over many slots takes a few calls per node and decides each op once', async () => {
    const store = new RedisStore({ nodes: cluster.nodes.map((n) => n.url) })
    await store.whenReady()
    await resetStats(store)
    const admitted = await admittedPerSubject(store, 'node-batch')
    await store.close()
    expect(admitted.filter((n) => n !== CAPACITY)).toEqual([])
    const { calls, failed } = await scriptCalls()
    expect(failed).toBe(0)
    // 5 turns of 600 ops in batches of at most 128 per node: far fewer calls than ops.
    expect(calls).toBeLessThan((SUBJECTS * (CAPACITY + 2)) / 10)
  })

  it("a hot subject's ops in one node batch read its state key once, each still decided exactly", async () => {
    const store = new RedisStore({ nodes: cluster.nodes.map((n) => n.url) })
    await store.whenReady()
    await resetStats(store)
    const limiter = new Limiter({
      store,
      policy: 'hot',
      limits: { r: fixedWindow({ limit: HOT_CAPACITY, windowMs: 600_000 }) },
    })
    // One turn: every hot subject HOT_CALLS times, so each master gets a batch over several slots.
    const decisions = await Promise.all(
      Array.from({ length: HOT_SUBJECTS * HOT_CALLS }, (_, i) => limiter.consume(`hot-${i % HOT_SUBJECTS}`)),
    )
    await store.close()
    const admitted = new Array<number>(HOT_SUBJECTS).fill(0)
    decisions.forEach((d, i) => {
      if (d.allowed) admitted[i % HOT_SUBJECTS]!++
    })
    expect(admitted).toEqual(new Array(HOT_SUBJECTS).fill(HOT_CAPACITY))
    let gets = 0
    for (const n of cluster.nodes) {
      const c = new Redis(n.url)
      gets += commandCallsIn(await c.info('commandstats'), ['get'])
      c.disconnect()
    }
    // At most one GET per subject (none where a master got one slot: its batch reads with MGET),
    // where reading every op's key would take HOT_SUBJECTS * HOT_CALLS.
    expect(gets).toBeLessThanOrEqual(HOT_SUBJECTS)
  })

  it('hot subjects with blocks and alerts in node batches (each key sent once): decided as a MemoryStore decides', async () => {
    const store = new RedisStore({ nodes: cluster.nodes.map((n) => n.url) })
    const memory = new MemoryStore()
    await store.whenReady()
    const limiterOn = (s: RedisStore | MemoryStore) =>
      new Limiter({
        store: s,
        policy: 'hot-blocks',
        alertAt: 0.5,
        block: { after: 3, withinMs: 600_000, durationsMs: [600_000] },
        limits: {
          r: fixedWindow({ limit: 20, windowMs: 3_600_000 }),
          b: fixedWindow({ limit: 30, windowMs: 30 * 86_400_000 }),
        },
      })
    const turn = (l: Limiter) =>
      Promise.all(
        Array.from({ length: HOT_SUBJECTS * HOT_CALLS }, (_, i) =>
          i % 7 === 3
            ? l.unblock(`hb-${i % HOT_SUBJECTS}`)
            : l.consume(`hb-${i % HOT_SUBJECTS}`, { requests: 1 + (i % 2) }),
        ),
      )
    const onRedis = turn(limiterOn(store))
    const onMemory = turn(limiterOn(memory))
    const facts = (d: Decision) => [
      d.allowed,
      d.blocked,
      d.blockedNow,
      d.limits.map((l) => l.remaining),
      d.alerts.length,
    ]
    expect((await onRedis).map(facts)).toEqual((await onMemory).map(facts))
    await store.close()
    await memory.close()
  })

  it('a client whose slot map is wrong has its node batches refused and sent again by slot, nothing charged twice', async () => {
    const store = new RedisStore({ nodes: cluster.nodes.map((n) => n.url) })
    await store.whenReady()
    // Every slot said to be on one node: each turn's batch names keys of the other two.
    const connection = (store as unknown as { connection: { nodeOfSlot(slot: number): string | undefined } })
      .connection
    connection.nodeOfSlot = () => 'one-node-for-all'
    await resetStats(store)
    const admitted = await admittedPerSubject(store, 'stale-map')
    await store.close()
    expect(admitted.filter((n) => n !== CAPACITY)).toEqual([])
    const { failed } = await scriptCalls()
    // The node batches really were refused (then sent again slot by slot).
    expect(failed).toBeGreaterThan(0)
  })

  it.each(CLIENT_KINDS)(
    'a %s cluster client names the master of each slot, so its ops go in node batches',
    async (kind) => {
      const made = await clusterClient(
        kind,
        cluster.nodes.map((n) => n.port),
      )
      const store = new RedisStore({ client: made.client })
      await store.whenReady()
      await resetStats(store)
      const admitted = await admittedPerSubject(store, `kind-${kind.replace(/\W/g, '-')}`)
      await store.close()
      await made.close()
      expect(admitted.filter((n) => n !== CAPACITY)).toEqual([])
      expect((await scriptCalls()).calls).toBeLessThan((SUBJECTS * (CAPACITY + 2)) / 10)
    },
  )
})
