/**
 * A batch sends each of its distinct keys once, with a map naming which fills every place of the
 * script's layout, and the arguments an op shares with an op before it once, with a map naming
 * where each op's start (apply.lua's KEYS and ARGV). What must hold: a batch whose
 * ops repeat keys and arguments — one subject many times, subjects interleaved, groups, resets
 * and unblocks, blocks and alert markers, adjustments — decides every op as a MemoryStore does
 * the same ops one after the other, and the calls really carry each key once.
 */
import { Redis } from 'ioredis'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  compose,
  type Decision,
  fixedWindow,
  Limiter,
  type LimiterOptions,
  MemoryStore,
  RedisStore,
  type Store,
} from '../src/index.js'
import { redisStoreFixture } from './helpers/redis-store-fixture.js'

const redis = redisStoreFixture()

/** What a decision says that does not depend on when it was made. */
function facts(d: Decision) {
  return {
    allowed: d.allowed,
    blocked: d.blocked,
    blockedNow: d.blockedNow,
    deniedBy: d.deniedBy,
    remaining: d.limits.map((l) => l.remaining),
    alerts: d.alerts.map((a) => a.name),
  }
}

/**
 * Fixed windows of 30 days: a remaining depends on nothing but the charges (a bucket's refill
 * would move it between the two stores' clocks, and an alert's crossing with it).
 */
const MONTH_MS = 30 * 86_400_000
function options(store: Store, policy: string): LimiterOptions {
  return {
    store,
    policy,
    alertAt: 0.5,
    block: { after: 3, withinMs: 600_000, durationsMs: [600_000] },
    limits: {
      burst: fixedWindow({ limit: 10, windowMs: MONTH_MS }),
      monthly: fixedWindow({ limit: 1000, windowMs: MONTH_MS }),
    },
  }
}

/** The FCALLs the Redis receives while `run` runs: each as its arguments. */
async function fcallsDuring(run: () => Promise<unknown>): Promise<string[][]> {
  const client = new Redis(redis.server.url)
  const monitor = await client.monitor()
  const calls: string[][] = []
  monitor.on('monitor', (_time: string, args: string[]) => {
    if (args[0]?.toLowerCase() === 'fcall') calls.push(args)
  })
  try {
    await run()
    // MONITOR's feed runs behind the replies: a PING sent after is echoed after the calls.
    await client.ping()
    await new Promise((r) => setTimeout(r, 100))
  } finally {
    monitor.disconnect()
    client.disconnect()
  }
  return calls
}

let memory: MemoryStore
beforeEach(() => {
  memory = new MemoryStore()
})
afterEach(async () => {
  await memory.close()
})

/** The same ops, issued in one event-loop turn by `turn`, on the Redis and on a MemoryStore. */
async function both<T>(policy: string, turn: (l: Limiter, store: Store) => Promise<T>): Promise<[T, T]> {
  const onRedis = turn(new Limiter(options(redis.store, policy)), redis.store)
  const onMemory = turn(new Limiter(options(memory, policy)), memory)
  return [await onRedis, await onMemory]
}

describe('a batch sends each key and argument once', () => {
  it('one subject 16 times, with a block and alerts: one call naming four keys, decided as one by one', async () => {
    await new Limiter(options(redis.store, 'warm')).peek('x') // the library loaded
    let results: [Decision[], Decision[]] | undefined
    const calls = await fcallsDuring(async () => {
      results = await both('maps-hot', (l) =>
        Promise.all(Array.from({ length: 16 }, () => l.consume('alice'))),
      )
    })
    const [onRedis, onMemory] = results!
    expect(onRedis.map(facts)).toEqual(onMemory.map(facts))
    // Ten admitted, an alert as the fifth crossed half, the third denial started a block.
    expect(onRedis.filter((d) => d.allowed)).toHaveLength(10)
    expect(onRedis.flatMap((d) => d.alerts.map((a) => a.name))).toEqual(['burst'])
    expect(onRedis.map((d) => d.blockedNow).indexOf(true)).toBe(12)
    expect(onRedis.slice(13).every((d) => d.blocked)).toBe(true)
    // One call: its state, block, alert marker (two limits) and strikes keys once each, where the
    // layout names 16 x 5 places.
    expect(calls).toHaveLength(1)
    expect(Number(calls[0]![2])).toBe(5)
    // And the ops' arguments (a header, two costs) once: FCALL, its function, the key count, the
    // 5 keys, the policy count and text, 3 counts, 2 maps, 3 arguments.
    expect(calls[0]).toHaveLength(18)
  })

  it('subjects interleaved, a group, a reset and an unblock in one batch: decided as one by one', async () => {
    // bob blocked first (in batches of his own).
    const pre = await both('maps-mixed', (l) =>
      Promise.all(Array.from({ length: 13 }, () => l.consume('bob', { requests: 1 }))),
    )
    expect(pre[0].map(facts)).toEqual(pre[1].map(facts))
    expect(pre[0][12]!.blockedNow).toBe(true)
    const [onRedis, onMemory] = await both('maps-mixed', (l, store) => {
      const team = new Limiter({ ...options(store, 'maps-team') })
      const group = compose([
        { limiter: l, subject: 'alice' },
        { limiter: team, subject: 'research' },
      ])
      return Promise.all([
        l.consume('alice'),
        l.consume('bob'),
        l.consume('alice', { requests: 2 }),
        group.consume({ requests: 3 }),
        l.consume('carol'),
        l.reset('alice'),
        l.consume('alice'),
        l.unblock('bob'),
        l.consume('bob'),
        group.consume({ requests: 4 }),
        team.consume('research'),
        l.consume('carol', { requests: 5 }),
      ]).then((ds) => ds.map((d) => ('levels' in d ? d.levels.map(facts) : facts(d))))
    })
    expect(onRedis).toEqual(onMemory)
    // alice: reset after 1 + 2 + 3, then 1 + 4 (the second group's); bob: unblocked, his window
    // spent; carol: 1 + 5. A peek reports what one more request would leave.
    const after = await both('maps-mixed', (l) =>
      Promise.all(['alice', 'bob', 'carol'].map((s) => l.peek(s))),
    )
    expect(after[0].map(facts)).toEqual(after[1].map(facts))
    expect(after[0].map((d) => d.limits[0]!.remaining)).toEqual([4, 0, 3])
    expect(after[0][1]!.blocked).toBe(false)
  })

  it('reservations settled in one batch: repeated adjust arguments each reach their op', async () => {
    const subjects = ['dave', 'dave', 'erin', 'dave']
    const [onRedis, onMemory] = await both('maps-adjust', async (l) => {
      const reserved = await Promise.all(subjects.map((s) => l.reserve(s, { requests: 2 })))
      const settled = await Promise.all(reserved.map((r, i) => r.settle({ requests: i === 2 ? 1 : 3 })))
      const peeks = await Promise.all(['dave', 'erin'].map((s) => l.peek(s)))
      return [...reserved.map((r) => r.decision), ...settled, ...peeks].map(facts)
    })
    expect(onRedis).toEqual(onMemory)
    // dave: three reservations of 2 settled at 3 each; erin: one settled at 1 (a peek reports
    // what one more request would leave).
    expect(onRedis.slice(-2).map((d) => d.remaining[0])).toEqual([0, 8])
  })

  it('more than 94 distinct keys with repeats: every index read right', async () => {
    const subjects = Array.from({ length: 40 }, (_, i) => `many-${i}`)
    const [onRedis, onMemory] = await both('maps-many', (l) =>
      Promise.all(
        [...subjects, ...subjects, ...subjects].map((s, i) => l.consume(s, { requests: 1 + (i % 3) })),
      ),
    )
    expect(onRedis.map(facts)).toEqual(onMemory.map(facts))
  })

  it('a batch with more distinct keys than a map can name goes as it is, decided as one by one', async () => {
    const store = new RedisStore({ url: redis.server.url, maxBatch: 3000 })
    try {
      // 2,300 subjects x 4 keys: past 8,836 distinct keys; one subject twice.
      const subjects = Array.from({ length: 2300 }, (_, i) => `wide-${i}`)
      subjects.push('wide-7')
      const wide = new Limiter(options(store, 'maps-wide'))
      const onRedis = await Promise.all(subjects.map((s) => wide.consume(s, { requests: 9 })))
      const l = new Limiter(options(memory, 'maps-wide'))
      const onMemory = await Promise.all(subjects.map((s) => l.consume(s, { requests: 9 })))
      expect(onRedis.map(facts)).toEqual(onMemory.map(facts))
      expect(onRedis.at(-1)!.allowed).toBe(false)
    } finally {
      await store.close()
    }
  })
})
