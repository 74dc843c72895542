import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Limiter } from '../src/limiter.js'
import { RedisStore } from '../src/store/redis/store.js'
import { CAPACITY, limitsFor, type WorkerKind } from './fixtures/worker-protocol.js'
import { type RedisServer, startRedis } from './helpers/redis-server.js'
import { runWorkers } from './helpers/workers.js'

const PROCESSES = 4
const IN_FLIGHT = 256

describe('exactness across processes sharing one Redis', () => {
  let server: RedisServer
  beforeAll(async () => {
    server = await startRedis()
  })
  afterAll(async () => {
    await server.stop()
  })

  for (const kind of ['tokenBucket', 'fixedWindow', 'slidingWindow', 'slidingLog'] as WorkerKind[]) {
    it(`${kind}: ${PROCESSES} processes x ${IN_FLIGHT} concurrent calls admit exactly ${CAPACITY}`, async () => {
      const policy = `exact-${kind}`
      const jobs = Array.from({ length: PROCESSES }, () => ({
        redisUrl: server.url,
        policy,
        subject: 'shared',
        kind,
        calls: IN_FLIGHT,
      }))
      const reports = await runWorkers(jobs)
      const admitted = reports.reduce((sum, r) => sum + r.admitted, 0)
      expect(admitted).toBe(CAPACITY)
      expect(reports.reduce((sum, r) => sum + r.admitted + r.retries.length, 0)).toBe(PROCESSES * IN_FLIGHT)
    })
  }

  it('two limits: a denial by the token limit leaves the request limit untouched', async () => {
    const policy = 'exact-two'
    const costs = [37, 113, 250, 1, 64, 999, 5, 420]
    const jobs = Array.from({ length: PROCESSES }, () => ({
      redisUrl: server.url,
      policy,
      subject: 'shared',
      kind: 'twoLimits' as const,
      calls: IN_FLIGHT,
      unit: 'tokens' as const,
      costs,
    }))
    const reports = await runWorkers(jobs)
    const admitted = reports.reduce((sum, r) => sum + r.admitted, 0)
    const admittedTokens = reports.reduce((sum, r) => sum + r.admittedCost, 0)
    expect(admittedTokens).toBeLessThanOrEqual(10_000)
    expect(admitted).toBeGreaterThan(0)

    const client = new Redis(server.url)
    const limiter = new Limiter({ store: new RedisStore({ client }), policy, limits: limitsFor('twoLimits') })
    const state = await limiter.peek('shared', { requests: 0 })
    client.disconnect()
    expect(state.limits[0]!.remaining).toBe(100_000 - admitted)
    expect(state.limits[1]!.remaining).toBe(10_000 - admittedTokens)
  })
})
