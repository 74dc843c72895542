import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  AdminEventFeed,
  connectSluiceEvents,
  connectStoreGuard,
  LatencyRecorder,
} from '../../../src/control/admin/index.js'
import { fixedWindow, slidingWindow } from '../../../src/core/limits.js'
import { Sluice } from '../../../src/http/index.js'
import { Limiter } from '../../../src/limiter.js'
import { GuardedStore } from '../../../src/store/guarded.js'
import { MemoryStore } from '../../../src/store/memory.js'
import { RedisStore, redisClientOptions } from '../../../src/store/redis/store.js'
import { type RedisServer, startRedis } from '../../helpers/redis-server.js'

describe('the events feed', () => {
  it('keeps the latest events, pages them newest first, and refuses malformed ones by field', () => {
    let now = Date.parse('2026-11-30T10:00:00Z')
    const feed = new AdminEventFeed({ capacity: 3, clock: () => now })
    const seen: string[] = []
    const off = feed.subscribe((e) => seen.push(e.message))
    for (let i = 1; i <= 4; i++) {
      now += 1000
      feed.publish({ type: 'alert', subject: `key:k${i}`, message: `m${i}`, data: { i } })
    }
    off()
    feed.publish({ type: 'store', message: 'after unsubscribing' })
    expect(seen).toEqual(['m1', 'm2', 'm3', 'm4'])
    const page = feed.list({ limit: 2 })
    expect(page.items.map((e) => e.message)).toEqual(['after unsubscribing', 'm4'])
    expect(feed.list({ cursor: page.next }).items.map((e) => e.message)).toEqual(['m3'])
    expect(page.items[1]).toMatchObject({
      id: `${feed.stream}-4`,
      time: '2026-11-30T10:00:04.000Z',
      severity: 'warning',
      subject: 'key:k4',
      tier: null,
      data: { i: 4 },
    })
    // A reader that saw m3 gets m4 and the last; one that saw m1 is told one was lost.
    expect(feed.since(`${feed.stream}-3`).events.map((e) => e.message)).toEqual(['m4', 'after unsubscribing'])
    expect(feed.since(`${feed.stream}-1`).missed).toBe(1)
    expect(feed.since(undefined).events).toEqual([])

    const bad: [object, string][] = [
      [{ type: 'party', message: 'x' }, 'type'],
      [{ type: 'alert', message: '' }, 'message'],
      [{ type: 'alert', message: 'x', severity: 'meh' }, 'severity'],
      [{ type: 'alert', message: 'x', data: { big: 'x'.repeat(5000) } }, 'data'],
      [{ type: 'alert', message: 'x', data: [] }, 'data'],
      [{ type: 'alert', message: 'x', time: -1 }, 'time'],
    ]
    for (const [input, field] of bad)
      expect(() => feed.publish(input as never)).toThrow(expect.objectContaining({ field }))
    // Control characters cannot forge lines in a log or a terminal; long texts are cut.
    const odd = feed.publish({
      type: 'alert',
      message: `a\nb\u001b[31m${'x'.repeat(600)}`,
      subject: 'key:\r',
    })
    expect(odd.message.includes('\n') || odd.message.includes('\u001b')).toBe(false)
    expect(odd.message.length).toBe(500)
    expect(odd.subject).toBe('key:\uFFFD')
    expect(() => new AdminEventFeed({ capacity: 0 })).toThrow(/capacity/)
  })

  it('the latency recorder: percentiles of the calls within its window', () => {
    let now = 0
    const recorder = new LatencyRecorder({ samples: 100, windowMs: 1000, clock: () => now })
    expect(recorder.snapshot()).toMatchObject({ count: 0, p50Ms: null, p99Ms: null })
    for (let i = 1; i <= 100; i++) recorder.record(i)
    recorder.record(Number.NaN)
    recorder.record(-5)
    expect(recorder.snapshot()).toEqual({
      windowMs: 1000,
      count: 100,
      p50Ms: 50,
      p90Ms: 90,
      p99Ms: 99,
      maxMs: 100,
    })
    now = 500
    for (let i = 0; i < 10; i++) recorder.record(1000) // replaces the ten oldest samples
    now = 1200 // the first hundred are out of the window
    expect(recorder.snapshot()).toMatchObject({ count: 10, p50Ms: 1000 })
  })
})

describe('connecting the HTTP core and the store guard to the feed', () => {
  let hook: Server
  let hookUrl: string
  const hookStatus = 500
  let redis: RedisServer

  beforeAll(async () => {
    hook = createServer((req, res) => {
      req.resume()
      req.on('end', () => {
        res.statusCode = hookStatus
        res.end()
      })
    })
    await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve))
    hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}`
    redis = await startRedis()
  })
  afterAll(async () => {
    await new Promise((resolve) => hook.close(resolve))
    await redis?.stop()
  })

  const request = (ip: string) => ({ method: 'POST', url: '/v1/chat', headers: {}, remoteAddress: ip })

  it('alerts, blocks, spent budgets and webhook results, each pointing at what it is about', async () => {
    const feed = new AdminEventFeed()
    const sluice = new Sluice({
      logger: false,
      store: new MemoryStore(),
      tiers: {
        anonymous: {
          scope: 'ip',
          limits: {
            minute: slidingWindow({ limit: 5, windowMs: 60_000 }),
            budget: fixedWindow({ limit: 1, windowMs: 86_400_000, unit: 'usd' }),
          },
        },
      },
      cost: () => ({ requests: 1, usd: 0.3 }),
      alertAt: 0.5,
      block: { after: 3, withinMs: 60_000 },
      // A secret in the path, as Slack's hooks have: the feed shows the origin only.
      webhook: {
        url: `${hookUrl}/hooks/T000/SECRET-PART`,
        retries: 1,
        backoffMs: 5,
        events: ['alert', 'block'],
      },
    })
    const errors: unknown[] = []
    const off = connectSluiceEvents(feed, sluice, {
      isBudget: (_tier, limit) => limit === 'budget',
      onError: (e) => errors.push(e),
    })
    // 0.3 USD a call against a 1 USD budget: the second call crosses 50 %, the fourth is refused
    // by the budget, again and again until the block.
    const statuses: number[] = []
    for (let i = 0; i < 8; i++) statuses.push((await sluice.check(request('192.0.2.7'))).status)
    await sluice.flush()
    off()
    expect(statuses.slice(0, 3)).toEqual([200, 200, 200])
    expect(statuses.slice(3).every((s) => s === 429)).toBe(true)
    expect(errors).toEqual([])

    const events = feed.list().items.reverse()
    const types = events.map((e) => e.type)
    expect(types.filter((t) => t === 'budget')).toHaveLength(1) // once, not once per refusal
    expect(types.filter((t) => t === 'block')).toHaveLength(1)
    const alert = events.find((e) => e.type === 'alert')!
    expect(alert).toMatchObject({ subject: 'ip:192.0.2.7', tier: 'anonymous', severity: 'warning' })
    expect(alert.message).toMatch(/^ip:192\.0\.2\.7 used \d+% of its "(minute|budget)" limit/)
    const budget = events.find((e) => e.type === 'budget')!
    expect(budget.message).toMatch(/spent its "budget" budget/)
    const block = events.find((e) => e.type === 'block')!
    expect(block.message).toMatch(/is blocked for \d+m?/)

    const deliveries = events.filter((e) => e.type === 'webhook')
    expect(deliveries.length).toBeGreaterThanOrEqual(2)
    for (const d of deliveries) {
      expect(d.data).toMatchObject({ status: 'failed', target: hookUrl, attempts: 2, error: 'HTTP 500' })
      expect(JSON.stringify(d)).not.toContain('SECRET')
    }
    // Each failed delivery names the event it carried.
    const refs = deliveries.map((d) => d.data.ref)
    expect(refs).toContain(block.id)
    expect(
      refs.every((ref) => events.some((e) => e.id === ref && (e.type === 'alert' || e.type === 'block'))),
    ).toBe(true)

    // Deliveries a sender reports as done (`webhookDelivered`) show as delivered.
    const later = new AdminEventFeed()
    connectSluiceEvents(later, sluice)
    sluice.events.emit('alert', {
      ...(alert.data as object),
      event: 'sluice.alert',
      subject: 'ip:x',
      tier: 't',
      at: new Date().toISOString(),
      limit: {
        name: 'minute',
        unit: 'requests',
        kind: 'slidingWindow',
        limit: 1,
        remaining: 0,
        windowSeconds: 60,
        resetMs: 1,
      },
      used: 1,
      threshold: 0.8,
      kind: 'ip',
    } as never)
    ;(sluice.events as unknown as NodeJS.EventEmitter).emit('webhookDelivered', {
      url: `${hookUrl}/x?token=abc`,
      attempts: 1,
      payload: { event: 'sluice.alert', subject: 'ip:x', tier: 't' },
    })
    const delivered = later.list({ type: 'webhook' }).items[0]!
    expect(delivered.data).toMatchObject({ status: 'delivered', target: hookUrl, attempts: 1, error: null })
    expect(delivered.message).not.toContain('token')
  })

  it('a malformed event from a producer never reaches the producer', () => {
    const feed = new AdminEventFeed()
    const sluice = new Sluice({ logger: false, store: new MemoryStore() })
    const errors: unknown[] = []
    connectSluiceEvents(feed, sluice, { onError: (e) => errors.push(e) })
    expect(() => sluice.events.emit('alert', { subject: 'ip:x', limit: null } as never)).not.toThrow()
    expect(errors).toHaveLength(1)
    expect(feed.published).toBe(0)
  })

  it('the store going down and coming back', async () => {
    const feed = new AdminEventFeed()
    const client = new Redis(redis.url, redisClientOptions())
    client.on('error', () => {})
    const store = new RedisStore({ client })
    await store.whenReady()
    const guard = new GuardedStore({
      store,
      failMode: 'open',
      timeoutMs: 100,
      failureThreshold: 1,
      probeIntervalMs: 50,
    })
    const off = connectStoreGuard(feed, guard, { name: 'Redis' })
    const limiter = new Limiter({
      store: guard,
      policy: 'p',
      limits: { m: slidingWindow({ limit: 5, windowMs: 60_000 }) },
    })
    try {
      await redis.kill()
      await expect
        .poll(async () => {
          await limiter.consume('s').catch(() => {})
          return guard.state
        })
        .toBe('down')
      await redis.start()
      await expect.poll(() => guard.state, { timeout: 10_000 }).toBe('up')
      const events = feed.list().items.reverse()
      expect(events.map((e) => [e.type, e.severity, e.data.state])).toEqual([
        ['store', 'critical', 'down'],
        ['store', 'info', 'up'],
      ])
      expect(events[0]!.message).toMatch(/^Redis is unavailable/)
      expect(events[1]!.message).toMatch(/^Redis is available again after /)
    } finally {
      off()
      await guard.close()
      client.disconnect()
    }
  })
})
