import { Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { type Decision, Limiter, tokenBucket } from '../../src/index.js'
import { SluiceMetrics } from '../../src/metrics.js'
import { StoreUnavailableError } from '../../src/store/errors.js'
import { type FailMode, GuardedStore } from '../../src/store/guarded.js'
import { RedisStore, redisClientOptions } from '../../src/store/redis/store.js'
import { type RedisServer, startRedis } from '../helpers/redis-server.js'
import { sleep } from '../helpers/sleep.js'
import { type Sample, startLoad, waitFor } from './load.js'

const TIMEOUT_MS = 100
/** The promise under test: no call waits on Redis longer than its deadline plus this. */
const SLACK_MS = 50
const SLOW = 1e-6

describe('Redis outages: every call answers within its deadline, by the configured policy', () => {
  let server: RedisServer
  const cleanups: (() => Promise<void> | void)[] = []

  beforeAll(async () => {
    server = await startRedis()
  })
  afterAll(async () => {
    await server.stop()
  })
  afterEach(async () => {
    for (const c of cleanups.splice(0)) await c()
    // Leave Redis running for the next test.
    const probe = new Redis(server.url, { lazyConnect: true, retryStrategy: () => null })
    probe.on('error', () => {})
    try {
      await probe.connect()
      await probe.ping()
    } catch {
      await server.start()
    } finally {
      probe.disconnect()
    }
  })

  async function setup(failMode: FailMode, client = new Redis(server.url, redisClientOptions())) {
    client.on('error', () => {})
    const logs: { level: 'warn' | 'info'; message: string; details: object }[] = []
    const store = new RedisStore({ client })
    await store.whenReady()
    const guard = new GuardedStore({
      store,
      failMode,
      timeoutMs: TIMEOUT_MS,
      instances: 4,
      logger: {
        warn: (details, message) => logs.push({ level: 'warn', message, details }),
        info: (details, message) => logs.push({ level: 'info', message, details }),
      },
    })
    const metrics = new SluiceMetrics()
    metrics.watchStore(guard)
    cleanups.push(() => client.disconnect())
    const limiter = new Limiter({
      store: guard,
      policy: `outage-${failMode}`,
      // Roomy: the load itself is never what denies.
      limits: { burst: tokenBucket({ capacity: 1e9, refillPerSecond: 1e9 }) },
    })
    return { client, guard, logs, metrics, limiter }
  }

  /** Every call took at most the deadline plus slack, beyond any stall of the test's own event loop. */
  function expectNoHang(samples: Sample<unknown>[], loopDelayMs: number) {
    const slowest = Math.max(...samples.map((s) => s.ms))
    expect(samples.length).toBeGreaterThan(50)
    expect(slowest).toBeLessThanOrEqual(TIMEOUT_MS + SLACK_MS + loopDelayMs)
  }

  async function counterTotal(
    metrics: SluiceMetrics,
    name: 'fallbacks' | 'storeTransitions',
    label?: string,
  ) {
    const values = (await metrics[name].get()).values
    return values
      .filter((v) => label === undefined || Object.values(v.labels).includes(label))
      .reduce((sum, v) => sum + v.value, 0)
  }

  it('open: Redis killed under load → calls pass unverified; verified again soon after restart', async () => {
    const { limiter, logs, metrics, guard } = await setup('open')
    const probe = new Limiter({
      store: guard,
      policy: 'outage-open-probe',
      limits: { b: tokenBucket({ capacity: 1000, refillPerSecond: SLOW }) },
    })
    const load = startLoad((w) => limiter.consume(`worker-${w}`))
    await sleep(300)
    await server.kill()
    const killedAt = performance.now()
    await sleep(800)
    // Calls made during the outage charge nothing, now or later (nothing is queued for replay).
    for (let i = 0; i < 20; i++) expect((await probe.consume('q')).verified).toBe(false)
    await server.start()
    const restartedAt = performance.now()
    await waitFor('a verified decision after the restart', () =>
      load.samples.some((s) => s.at >= restartedAt && s.value?.verified === true),
    )
    await sleep(100)
    const samples = await load.stop()

    expectNoHang(samples, load.maxLoopDelayMs())
    expect(samples.filter((s) => s.error !== undefined)).toEqual([])
    const during = samples.filter((s) => s.at > killedAt && s.at < restartedAt)
    expect(during.length).toBeGreaterThan(20)
    for (const s of during) {
      expect(s.value!.allowed).toBe(true)
      expect(s.value!.verified).toBe(false)
      expect(s.value!.fallback).toBe('open')
    }
    const firstVerified = samples.find((s) => s.at >= restartedAt && s.value!.verified)!
    expect(firstVerified.at + firstVerified.ms - restartedAt).toBeLessThan(1_000)

    expect((await probe.peek('q', { requests: 0 })).limits[0]!.remaining).toBe(1000)
    // One log line per transition, not one per request.
    expect(
      logs.map((l) => l.level),
      JSON.stringify(logs),
    ).toEqual(['warn', 'info'])
    expect(await counterTotal(metrics, 'storeTransitions', 'down')).toBe(1)
    expect(await counterTotal(metrics, 'storeTransitions', 'up')).toBe(1)
    expect(await counterTotal(metrics, 'fallbacks', 'open')).toBeGreaterThanOrEqual(during.length)
    expect((await metrics.storeUp.get()).values[0]!.value).toBe(1)
    expect(guard.state).toBe('up')
  })

  it('closed: calls during the outage fail fast with StoreUnavailableError, then pass again', async () => {
    const { limiter } = await setup('closed')
    const load = startLoad((w) => limiter.consume(`worker-${w}`))
    await sleep(300)
    await server.kill()
    const killedAt = performance.now()
    await sleep(800)
    await server.start()
    const restartedAt = performance.now()
    await waitFor('an allowed call after the restart', () =>
      load.samples.some((s) => s.at >= restartedAt && s.value?.allowed === true),
    )
    const samples = await load.stop()

    expectNoHang(samples, load.maxLoopDelayMs())
    const during = samples.filter((s) => s.at > killedAt && s.at < restartedAt)
    expect(during.length).toBeGreaterThan(20)
    for (const s of during) {
      expect(s.error).toBeInstanceOf(StoreUnavailableError)
      expect((s.error as StoreUnavailableError).retryAfterMs).toBeGreaterThan(0)
    }
    const firstOk = samples.find((s) => s.at >= restartedAt && s.value !== undefined)!
    expect(firstOk.value!.verified).toBe(true)
    expect(firstOk.at + firstOk.ms - restartedAt).toBeLessThan(1_000)
  })

  it('local: each limit is divided by the instance count; local reservations settle locally', async () => {
    const { guard, limiter } = await setup('local')
    const shared = new Limiter({
      store: guard,
      policy: 'outage-local',
      limits: { b: tokenBucket({ capacity: 40, refillPerSecond: SLOW }) },
    })
    const load = startLoad((w) => limiter.consume(`worker-${w}`))
    await sleep(300)
    await server.kill()
    await sleep(200)

    const decisions: Decision[] = []
    for (let i = 0; i < 15; i++) decisions.push(await shared.consume('fresh'))
    expect(decisions.filter((d) => d.allowed).length).toBe(10) // 40 shared by 4 instances
    for (const d of decisions) expect(d.fallback).toBe('local')
    expect(decisions[14]!.limits[0]!.limit).toBe(40) // decisions still speak of the whole limit
    const reservation = await shared.reserve('held', { requests: 5 })
    expect(reservation.allowed).toBe(true)
    expect(reservation.decision.fallback).toBe('local')

    await server.start()
    await waitFor('the store back up', () => guard.state === 'up')
    const samples = await load.stop()
    expectNoHang(samples, load.maxLoopDelayMs())
    expect(samples.filter((s) => s.error !== undefined)).toEqual([])

    // Settled where it was charged: Redis, which never saw the reservation, is not refunded.
    const settled = await reservation.settle({ requests: 1 })
    expect(settled.fallback).toBe('local')
    expect(guard.local.size).toBeGreaterThan(0)
    const inRedis = await shared.peek('held', { requests: 0 })
    expect(inRedis.verified).toBe(true)
    expect(inRedis.limits[0]!.remaining).toBe(40)
  })

  it('a hung Redis (stopped, connection open) is cut by the deadline', async () => {
    const { client, limiter, guard } = await setup('open')
    const pid = Number(/process_id:(\d+)/.exec(await client.info('server'))![1])
    const load = startLoad((w) => limiter.consume(`worker-${w}`))
    await sleep(300)
    process.kill(pid, 'SIGSTOP')
    const stoppedAt = performance.now()
    try {
      await sleep(700)
    } finally {
      process.kill(pid, 'SIGCONT')
    }
    const resumedAt = performance.now()
    await waitFor('the store back up', () => guard.state === 'up')
    await sleep(100)
    const samples = await load.stop()

    expectNoHang(samples, load.maxLoopDelayMs())
    const during = samples.filter((s) => s.at > stoppedAt + TIMEOUT_MS && s.at < resumedAt - TIMEOUT_MS)
    expect(during.length).toBeGreaterThan(10)
    for (const s of during) expect(s.value!.fallback).toBe('open')
    expect(samples.at(-1)!.value!.verified).toBe(true)
  })

  it('a client with ioredis defaults (offline queue on) neither hangs nor replays calls after reconnecting', async () => {
    const { limiter, guard } = await setup('open', new Redis(server.url))
    const probe = new Limiter({
      store: guard,
      policy: 'outage-defaults-probe',
      limits: { b: tokenBucket({ capacity: 1000, refillPerSecond: SLOW }) },
    })
    const load = startLoad((w) => limiter.consume(`worker-${w}`))
    await sleep(200)
    await server.kill()
    await sleep(300)
    for (let i = 0; i < 20; i++) expect((await probe.consume('q')).verified).toBe(false)
    await server.start()
    await waitFor('the store back up', () => guard.state === 'up')
    const samples = await load.stop()
    expectNoHang(samples, load.maxLoopDelayMs())
    await sleep(200) // give a replay, if there were one, time to land
    const state = await probe.peek('q', { requests: 0 })
    expect(state.verified).toBe(true)
    expect(state.limits[0]!.remaining).toBe(1000)
  })
})
