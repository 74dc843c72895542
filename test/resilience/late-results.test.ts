import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  concurrency,
  fixedWindow,
  Limiter,
  type Reservation,
  slidingLog,
  slidingWindow,
  tokenBucket,
} from '../../src/index.js'
import { SluiceMetrics } from '../../src/metrics.js'
import { type FailMode, GuardedStore } from '../../src/store/guarded.js'
import { RedisStore, redisClientOptions } from '../../src/store/redis/store.js'
import { type RedisServer, startRedis } from '../helpers/redis-server.js'
import { sleep } from '../helpers/sleep.js'

const SLOW = 1e-6
/** Windows so long that none ends during the test (aligned to the epoch, they end in 2033). */
const LONG_MS = 1e12
const TOKENS_PER_CALL = 7
const SUBJECTS = 8

/** Every kind of limit, each roomy enough that nothing is denied by the load itself. */
const LIMITS = {
  requests: tokenBucket({ capacity: 1e6, refillPerSecond: SLOW }),
  tokens: slidingWindow({ limit: 1e9, windowMs: LONG_MS, unit: 'tokens' }),
  daily: fixedWindow({ limit: 1e6, windowMs: LONG_MS }),
  log: slidingLog({ limit: 1e6, windowMs: 3_600_000 }),
  inflight: concurrency({ limit: 1e6, leaseMs: 600_000 }),
}

interface Told {
  view: FailMode
  subject: string
  reservation?: Reservation
  error?: unknown
}

/**
 * A call whose answer came from the outage policy (the deadline passed) was not charged as far as
 * its client knows; when Redis runs it late anyway, the guard refunds it and releases its lease. So
 * whatever Redis holds afterwards is exactly what clients were told was charged.
 */
describe('late results: what Redis charged equals what clients were told', () => {
  let server: RedisServer
  let client: Redis

  beforeAll(async () => {
    server = await startRedis()
    client = new Redis(server.url, redisClientOptions())
    client.on('error', () => {})
    await new RedisStore({ client }).whenReady()
  })
  afterAll(async () => {
    client.disconnect()
    await server.stop()
  })

  it('Redis paused (SIGSTOP) during a burst of reserves through open, closed and local views', async () => {
    const store = new RedisStore({ client })
    const logs: string[] = []
    const guard = new GuardedStore({
      store,
      failMode: 'open',
      timeoutMs: 25,
      logger: { warn: (_, m) => logs.push(`warn ${m}`), info: (_, m) => logs.push(`info ${m}`) },
    })
    const metrics = new SluiceMetrics()
    metrics.watchStore(guard)
    const views: FailMode[] = ['open', 'closed', 'local']
    const limiters = views.map(
      (mode) => new Limiter({ store: guard.withFailMode(mode), policy: 'late', limits: LIMITS }),
    )
    const told: Told[] = []
    let running = true
    const loop = async (w: number) => {
      const view = views[w % views.length]!
      const subject = `s${w % SUBJECTS}`
      while (running) {
        const t: Told = { view, subject }
        try {
          t.reservation = await limiters[w % views.length]!.reserve(subject, { tokens: TOKENS_PER_CALL })
        } catch (error) {
          t.error = error
        }
        told.push(t)
        await sleep(2)
      }
    }
    const pid = Number(/process_id:(\d+)/.exec(await client.info('server'))![1])
    const loops = Array.from({ length: 48 }, (_, w) => loop(w))
    await sleep(250)
    process.kill(pid, 'SIGSTOP')
    try {
      await sleep(600)
    } finally {
      process.kill(pid, 'SIGCONT')
    }
    await sleep(400)
    running = false
    await Promise.all(loops)
    expect(await guard.reconciled()).toBe(true)

    const verified = told.filter((t) => t.reservation?.decision.verified)
    const fallbacks = told.filter((t) => t.reservation !== undefined && !t.reservation.decision.verified)
    const refused = told.filter((t) => t.error !== undefined)
    // The pause did what the test needs: calls answered by each policy, and Redis still ran some.
    expect(verified.length).toBeGreaterThan(100)
    expect(fallbacks.filter((t) => t.view === 'open').length).toBeGreaterThan(5)
    expect(fallbacks.filter((t) => t.view === 'local').length).toBeGreaterThan(5)
    expect(refused.length).toBeGreaterThan(5)
    for (const t of verified) expect(t.reservation!.allowed).toBe(true)

    // Settling what a fallback answered never reaches Redis (it was charged nowhere, or locally).
    for (const t of fallbacks) await t.reservation!.cancel()
    for (const t of fallbacks.slice(0, 10)) await t.reservation!.settle({ tokens: 1000 })

    const lateRefunds = (await metrics.lateRefunds.get()).values
    const refunded = lateRefunds.find((v) => v.labels.outcome === 'ok')?.value ?? 0
    expect(refunded, 'late results were refunded').toBeGreaterThan(0)
    expect(lateRefunds.filter((v) => v.labels.outcome !== 'ok' && v.value > 0)).toEqual([])

    // Redis, read without the guard: each subject holds exactly its verified reservations.
    const truth = new Limiter({ store: new RedisStore({ client }), policy: 'late', limits: LIMITS })
    for (let s = 0; s < SUBJECTS; s++) {
      const subject = `s${s}`
      const n = verified.filter((t) => t.subject === subject).length
      const peek = await truth.peek(subject, { requests: 0, tokens: 0, concurrent: 0 })
      const remaining = Object.fromEntries(peek.limits.map((l) => [l.name, l.remaining]))
      expect(remaining, subject).toEqual({
        requests: 1e6 - n,
        tokens: 1e9 - TOKENS_PER_CALL * n,
        daily: 1e6 - n,
        log: 1e6 - n,
        inflight: 1e6 - n,
      })
      const leases = truth.keysFor(subject).limits[4]!
      expect(await client.zcard(leases), `${subject} leases`).toBe(n)
    }
    // One log line per transition of the store (a loaded machine may see more than one outage
    // with so short a deadline), none per call, and no failed refund.
    const transitions = (await metrics.storeTransitions.get()).values.reduce((n, v) => n + v.value, 0)
    expect(transitions).toBeGreaterThanOrEqual(2)
    expect(logs).toHaveLength(transitions)
    for (let i = 0; i < logs.length; i++) {
      expect(logs[i]).toBe(
        i % 2 === 0
          ? 'warn store unavailable: answering by the outage policy until it is back'
          : 'info store available again: decisions are verified',
      )
    }
    await guard.close()
  })
})
