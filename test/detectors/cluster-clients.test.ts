/**
 * The Redis detector store on a Redis Cluster through each client library the limiter's store
 * supports: a node-redis cluster client routes a command by a key it is given (its sendCommand
 * takes the key first), unlike a single node-redis client or ioredis, which route by themselves.
 * Every method of the store runs against a real 3-node cluster.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { checkStep, resolveDetectors } from '../../src/core/detectors/index.js'
import { RedisDetectorStore } from '../../src/store/detectors/redis.js'
import { type RedisClusterServer, startRedisCluster } from '../helpers/redis-cluster.js'
import { CLIENT_KINDS, clusterClient, type MadeClient } from '../helpers/store-clients.js'

let cluster: RedisClusterServer
beforeAll(async () => {
  cluster = await startRedisCluster()
}, 60_000)
afterAll(async () => {
  await cluster?.stop()
})

const set = resolveDetectors({ loop: { alertAt: 3, throttleAt: 0, blockAt: 0 }, spend: false }).base

describe.each(CLIENT_KINDS)('detector store on a cluster, %s client', (kind) => {
  let made: MadeClient
  beforeAll(async () => {
    made = await clusterClient(
      kind,
      cluster.nodes.map((n) => n.port),
    )
    // ioredis's cluster client queues nothing before it is ready (the store's options).
    const c = made.client as { status?: string; once?: (e: string, f: () => void) => void }
    if (c.status !== undefined && c.status !== 'ready') await new Promise<void>((r) => c.once!('ready', r))
  }, 30_000)
  afterAll(async () => {
    await made?.close()
  })

  it('checks of subjects on every node are decided, and read back, cleared and allow-listed', async () => {
    const store = new RedisDetectorStore({
      client: made.client as never,
      prefix: `c${kind.replace(/\W/g, '')}:`,
    })
    // Twelve subjects: their hash tags spread over the three nodes' slots.
    const subjects = Array.from({ length: 12 }, (_, i) => `key:k${i}`)
    const outs = await Promise.all(
      subjects.flatMap((subject) =>
        Array.from({ length: 3 }, () =>
          store.check(subject, checkStep(set, { prompt: 'again', address: '192.0.2.7', isKey: true })!),
        ),
      ),
    )
    const alerts = outs.flatMap((o) => o.raised)
    expect(alerts).toHaveLength(subjects.length)
    for (const subject of subjects) expect((await store.inspect(subject)).flags.loop?.lv).toBe(1)

    await store.clear(subjects[0]!, 'loop')
    expect((await store.inspect(subjects[0]!)).flags.loop).toBeUndefined()
    await store.allow(subjects[1]!, 60_000)
    expect((await store.inspect(subjects[1]!)).allow).toBeGreaterThan(await store.now())
    await store.log({ subject: subjects[2]!, detector: 'loop', at: new Date(0).toISOString() })
    expect((await store.recent(10)).map((r) => r.subject)).toEqual([subjects[2]])
  })

  it('failed keys in the same turn as checks of subjects on every node: each decided, one alert', async () => {
    const store = new RedisDetectorStore({
      client: made.client as never,
      prefix: `cf${kind.replace(/\W/g, '')}:`,
    })
    const failed = { windowMs: 3_600_000, alertAt: 20, addressesAt: 0, prefixAddressesAt: 3, maxPrefixes: 10 }
    const outs = await Promise.all(
      Array.from({ length: 24 }, (_, i) => [
        store
          .check(`key:m${i % 6}`, checkStep(set, { prompt: 'again', isKey: false })!)
          .then((o) => o.raised),
        store.failure({ ...failed, address: `192.0.2.${i}`, prefix: `prefix000${i % 2}` }),
      ]).flat(),
    )
    const raised = outs.flat()
    expect(raised.filter((r) => r.detector === 'loop')).toHaveLength(6)
    expect(
      raised
        .filter((r) => r.detector === 'stuffing')
        .map((r) => r.prefix ?? 'gateway')
        .sort(),
    ).toEqual(['gateway', 'prefix0000', 'prefix0001'])
  })
})
