import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Limiter } from '../../src/limiter.js'
import { RedisStore } from '../../src/store/redis/store.js'
import { type RedisServer, startRedis } from '../helpers/redis-server.js'
import { sleep } from '../helpers/sleep.js'
import { runWorkerScript } from '../helpers/workers.js'
import { type LateJob, type LateReport, lateLimits } from './fixtures/late-protocol.js'

const WORKER = fileURLToPath(new URL('./fixtures/reserve-worker.ts', import.meta.url))

/** Keeps Redis busy for `ms` inside one script: healthy, but every other client waits meanwhile. */
const BUSY = `
local t = redis.call('TIME')
local start = t[1] * 1000000 + t[2]
repeat t = redis.call('TIME') until t[1] * 1000000 + t[2] - start >= tonumber(ARGV[1]) * 1000
return 1`

describe('late results across processes: a healthy but slow Redis', () => {
  let server: RedisServer
  let client: Redis

  beforeAll(async () => {
    server = await startRedis()
    client = new Redis(server.url)
  })
  afterAll(async () => {
    client.disconnect()
    await server.stop()
  })

  it('3 gateways × 50 parallel reservations: Redis holds exactly what was admitted, no stray lease', async () => {
    const job: LateJob = {
      redisUrl: server.url,
      policy: 'late-procs',
      subject: 'shared',
      rounds: 10,
      parallel: 50,
      tokens: 100,
      timeoutMs: 60,
      // 10 bursts over ~1 s: each one lands in or out of a 150 ms stall every 300 ms.
      pauseMs: 97,
    }
    // Redis stalls 150 ms at a time (well past the 60 ms deadline, so that calls caught in a stall
    // time out even on a loaded machine, while calls between stalls are answered in time)
    // — a slow script of someone else's, a big key…
    let slowing = true
    const slow = (async () => {
      const busy = new Redis(server.url)
      while (slowing) {
        await busy.eval(BUSY, 0, 150)
        await sleep(150)
      }
      busy.disconnect()
    })()
    let reports: LateReport[]
    try {
      reports = await runWorkerScript<LateJob, LateReport>(WORKER, [job, job, job])
    } finally {
      slowing = false
      await slow
    }

    const admitted = reports.reduce((n, r) => n + r.admitted, 0)
    const unavailable = reports.reduce((n, r) => n + r.unavailable, 0)
    const refunded = reports.reduce((n, r) => n + r.refunds.ok, 0)
    for (const r of reports) {
      expect(r.reconciled).toBe(true)
      expect(r.refunds.error + r.refunds.timeout).toBe(0)
    }
    // The scenario happened: some callers got 503s for calls Redis then ran late, and were refunded.
    expect(unavailable).toBeGreaterThan(0)
    expect(refunded).toBeGreaterThan(0)
    expect(admitted).toBeGreaterThan(0)
    expect(admitted + unavailable).toBe(3 * job.rounds * job.parallel)

    const truth = new Limiter({ store: new RedisStore({ client }), policy: job.policy, limits: lateLimits() })
    const peek = await truth.peek(job.subject, { tokens: 0, concurrent: 0 })
    expect(peek.limits.map((l) => l.remaining)).toEqual([1e9 - job.tokens * admitted, 1e6 - admitted])
    expect(await client.zcard(truth.keysFor(job.subject).limits[1]!)).toBe(admitted)
  })
})
