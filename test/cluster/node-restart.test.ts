import type { Cluster } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Decision, Limiter, tokenBucket } from '../../src/index.js'
import { StoreUnavailableError } from '../../src/store/errors.js'
import { GuardedStore } from '../../src/store/guarded.js'
import { RedisStore } from '../../src/store/redis/store.js'
import { type RedisClusterServer, startRedisCluster } from '../helpers/redis-cluster.js'
import { sleep } from '../helpers/sleep.js'
import { startLoad, waitFor } from '../resilience/load.js'

const TIMEOUT_MS = 100
const SLACK_MS = 50

describe('a Redis Cluster node restarts under load', () => {
  let cluster: RedisClusterServer
  let client: Cluster
  beforeAll(async () => {
    cluster = await startRedisCluster()
    client = cluster.client()
  })
  afterAll(async () => {
    client.disconnect()
    await cluster.stop()
  })

  it('every call answers within the deadline by its policy, and decisions are verified again after', async () => {
    const store = new RedisStore({ client })
    await store.whenReady()
    const transitions: string[] = []
    const open = new GuardedStore({
      store,
      failMode: 'open',
      timeoutMs: TIMEOUT_MS,
      logger: { warn: (_d, m) => transitions.push(m), info: (_d, m) => transitions.push(m) },
    })
    const closed = open.withFailMode('closed')
    const limits = { burst: tokenBucket({ capacity: 1e9, refillPerSecond: 1e9 }) }
    const openLimiter = new Limiter({ store: open, policy: 'restart-open', limits })
    const closedLimiter = new Limiter({ store: closed, policy: 'restart-closed', limits })
    // Each worker cycles through 30 subjects, so calls land on every node.
    let round = 0
    const call = (w: number): Promise<Decision> => {
      const subject = `w${w}-s${round++ % 30}`
      return w % 2 === 0 ? openLimiter.consume(subject) : closedLimiter.consume(subject)
    }
    const load = startLoad(call, 6, 10)
    await sleep(300)
    const victim = cluster.nodes[1]!
    await victim.kill()
    const killedAt = performance.now()
    await waitFor('the breaker to open', () => open.state === 'down', 15_000)
    await sleep(500)
    await victim.start()
    await cluster.waitHealthy()
    const healthyAt = performance.now()
    await waitFor('verified decisions again', () => open.state === 'up', 15_000)
    const upAt = performance.now()
    await sleep(300)
    const samples = await load.stop()

    const bound = TIMEOUT_MS + SLACK_MS + load.maxLoopDelayMs()
    expect(samples.length).toBeGreaterThan(50)
    expect(Math.max(...samples.map((s) => s.ms))).toBeLessThanOrEqual(bound)

    const during = samples.filter((s) => s.at > killedAt && s.at < healthyAt)
    const failedOpen = during.filter((s) => s.value?.fallback === 'open')
    const failedClosed = during.filter((s) => s.error !== undefined)
    expect(failedOpen.length).toBeGreaterThan(5)
    expect(failedClosed.length).toBeGreaterThan(5)
    for (const s of failedClosed) expect(s.error).toBeInstanceOf(StoreUnavailableError)
    // Open-mode calls never fail; closed-mode calls fail only with StoreUnavailableError.
    const errors = samples.flatMap((s) => (s.error === undefined ? [] : [s.error]))
    expect(errors.length).toBeGreaterThanOrEqual(failedClosed.length)
    expect(errors.filter((e) => !(e instanceof StoreUnavailableError))).toEqual([])

    const after = samples.filter((s) => s.at > upAt)
    expect(after.length).toBeGreaterThan(10)
    for (const s of after) expect(s.value?.verified).toBe(true)
    expect(transitions.length).toBeGreaterThanOrEqual(2)
    expect(transitions.length % 2).toBe(0) // every "down" was followed by an "up"
  })
})
