/**
 * The admin API's view of queues (GET /admin/v1/queues) over two gateway instances sharing a
 * real Redis: a request waiting on either instance shows on both, and the view drains to 0.
 */
import { createHash } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { sqliteHarness } from '../control/harness.js'
import { newKey, sharedRedis, startTestGateway, stopRedis, type TestGateway } from './helpers.js'

const TOKEN = 'test-admin-token-0123456789abcdef'
const harness = sqliteHarness()

afterAll(stopRedis)

interface TierView {
  tier: string
  waiting: number
  oldestWaitMs: number | null
  capacities: { subject: string; waiting: number; oldestWaitMs: number | null }[]
  recent: { admitted: number; refused: number; p50Ms: number | null; maxMs: number | null }
}

describe('GET /admin/v1/queues over two instances sharing Redis', () => {
  let a: TestGateway
  let b: TestGateway
  const caller = newKey('queued', 'waiter-1')

  beforeAll(async () => {
    await harness.setup()
    const redis = await sharedRedis()
    const config = {
      database: { url: harness.url() },
      admin: { tokenHash: createHash('sha256').update(TOKEN).digest('hex') },
      store: { type: 'redis' as const, url: redis.url },
      prefix: `queues-${process.pid}:`,
      tiers: {
        // One call, then one every 10 s: a call made at once waits (within maxWait) on the refill.
        queued: {
          scope: 'key' as const,
          limits: { burst: { kind: 'tokenBucket' as const, capacity: 1, refillPerSecond: 0.1 } },
          block: false as const,
          queue: { maxWait: '15s', lease: '3s' },
        },
      },
      auth: { keys: [caller.entry] },
    }
    a = await startTestGateway('redis', config)
    b = await startTestGateway('redis', config)
  }, 60_000)
  afterAll(async () => {
    await a?.close()
    await b?.close()
    await harness.teardown()
  })

  async function view(gw: TestGateway): Promise<TierView> {
    const response = await fetch(`${gw.url}/admin/v1/queues`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    })
    expect(response.status).toBe(200)
    const body = (await response.json()) as { shared: boolean; tiers: TierView[] }
    expect(body.shared).toBe(true)
    return body.tiers.find((t) => t.tier === 'queued')!
  }

  /** Reads the view until `done` holds (a deadline, not a timing assertion: it only bounds a hang). */
  async function until(gw: TestGateway, done: (v: TierView) => boolean): Promise<TierView> {
    const deadline = Date.now() + 20_000
    for (;;) {
      const v = await view(gw)
      if (done(v) || Date.now() > deadline) return v
      await new Promise((r) => setTimeout(r, 50))
    }
  }

  function call(gw: TestGateway, signal?: AbortSignal) {
    return fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${caller.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: 'Hi' }],
        max_tokens: 5,
      }),
      signal,
    }).then(async (r) => ({
      status: r.status,
      queueMs: r.headers.get('x-sluice-queue-ms'),
      body: await r.text(),
    }))
  }

  it('shows requests waiting on either instance on both, then drains to 0', async () => {
    const idle = await view(a)
    expect(idle).toMatchObject({ waiting: 0, oldestWaitMs: null, capacities: [] })
    expect((await call(a)).status).toBe(200)

    // One waits on B, two on A (those two given up later).
    const onB = call(b)
    const abort = new AbortController()
    const onA = [call(a, abort.signal).catch(() => 'aborted'), call(a, abort.signal).catch(() => 'aborted')]

    const seenOnA = await until(a, (v) => v.waiting === 3)
    expect(seenOnA.waiting).toBe(3)
    expect(seenOnA.capacities).toHaveLength(1)
    expect(seenOnA.capacities[0]).toMatchObject({ subject: 'key:waiter-1', waiting: 3 })
    expect(seenOnA.oldestWaitMs).toBeGreaterThanOrEqual(0)
    const seenOnB = await view(b)
    expect(seenOnB.waiting).toBe(3)

    abort.abort()
    expect(await Promise.all(onA)).toEqual(['aborted', 'aborted'])
    const answered = await onB
    expect(answered.status).toBe(200)
    expect(answered.queueMs).not.toBeNull()

    const drainedA = await until(a, (v) => v.waiting === 0)
    expect(drainedA).toMatchObject({ waiting: 0, oldestWaitMs: null, capacities: [] })
    expect((await view(b)).waiting).toBe(0)
    // Waits that ended, per instance: B admitted its waiter; A's two gave up (not counted).
    const recentB = (await view(b)).recent
    expect(recentB).toMatchObject({ admitted: 1, refused: 0, p50Ms: Number(answered.queueMs) })
    expect((await view(a)).recent).toMatchObject({ admitted: 0, refused: 0, p50Ms: null })
  }, 60_000)

  it('answers 401 without the admin token', async () => {
    const response = await fetch(`${a.url}/admin/v1/queues`)
    expect(response.status).toBe(401)
  })
})
