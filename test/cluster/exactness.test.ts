import { fileURLToPath } from 'node:url'
import calculateSlot from 'cluster-key-slot'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Limiter } from '../../src/index.js'
import { RedisStore } from '../../src/store/redis/store.js'
import { commandCallsIn, type RedisClusterServer, startRedisCluster } from '../helpers/redis-cluster.js'
import { runWorkerScript } from '../helpers/workers.js'
import {
  CAPACITY,
  LIMITS,
  POLICY,
  SLOTS,
  type SlotJob,
  type SlotReport,
  subjectPerSlot,
} from './fixtures/slots.js'

const WORKER = fileURLToPath(new URL('./fixtures/slot-worker.ts', import.meta.url))
const PROCESSES = 2
const PER_SUBJECT = 2

const runWorkers = (jobs: SlotJob[]) => runWorkerScript<SlotJob, SlotReport>(WORKER, jobs)

describe('exactness on a 3-node Redis Cluster, subjects on every hash slot', () => {
  let cluster: RedisClusterServer
  beforeAll(async () => {
    cluster = await startRedisCluster()
  })
  afterAll(async () => {
    await cluster.stop()
  })

  it(`${PROCESSES} processes x ${PER_SUBJECT} calls on each of ${SLOTS} subjects admit exactly ${CAPACITY} per subject`, async () => {
    const subjects = subjectPerSlot()
    expect(new Set(subjects.map((s) => calculateSlot(`${POLICY}:${s}`))).size).toBe(SLOTS)

    const nodes = cluster.nodes.map((n) => n.url)
    const reports = await runWorkers(
      Array.from({ length: PROCESSES }, () => ({ nodes, perSubject: PER_SUBJECT })),
    )

    expect(reports.map((r) => r.errors)).toEqual(reports.map(() => 0))
    const perSubject = subjects.map((_, i) => reports.reduce((sum, r) => sum + r.admitted[i]!, 0))
    const wrong = perSubject.map((n, i) => [subjects[i], n] as const).filter(([, n]) => n !== CAPACITY)
    expect(wrong).toEqual([])

    const store = new RedisStore({ nodes })
    await store.whenReady()
    const limiter = new Limiter({ store, policy: POLICY, limits: LIMITS })
    const sample = await Promise.all(subjects.filter((_, i) => i % 1024 === 0).map((s) => limiter.peek(s)))
    for (const d of sample) expect(d.limits[0]!.remaining).toBe(0)
    await store.close()

    // Every node holds its share of the subjects' state: they really were spread over the cluster.
    // And a node's ops of many slots share script calls (one per node and batch, not per slot).
    let scripts = 0
    for (const n of cluster.nodes) {
      const c = new Redis(n.url)
      const info = await c.info('commandstats')
      expect(await c.dbsize()).toBeGreaterThan(SLOTS / 10)
      c.disconnect()
      scripts += commandCallsIn(info, ['fcall', 'evalsha', 'eval'])
    }
    const decisions = PROCESSES * PER_SUBJECT * SLOTS
    expect(scripts).toBeLessThan(decisions / 10)
  })
})
