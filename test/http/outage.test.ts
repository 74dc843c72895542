/**
 * When Redis goes away: a tier that fails closed answers 503 with Retry-After (never a hang or a
 * crash), one that fails open lets requests through without rate-limit headers (nothing true to
 * say). Metrics count both. Every adapter, a real Redis killed mid-test.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Tier } from '../../src/http/index.js'
import { RedisStore, slidingWindow } from '../../src/index.js'
import { SluiceMetrics } from '../../src/metrics.js'
import { GuardedStore } from '../../src/store/guarded.js'
import { type RedisServer, startRedis } from '../helpers/redis-server.js'
import { ADAPTERS, startApp, type TestApp } from './apps.js'
import { call } from './client.js'

const tiers: Record<string, Tier> = {
  anonymous: { scope: 'ip', limits: { minute: slidingWindow({ limit: 100, windowMs: 60_000 }) } },
}

describe('store outage', () => {
  let redis: RedisServer
  let guarded: GuardedStore
  const metrics = new SluiceMetrics()
  const apps: { adapter: string; closed: TestApp; open: TestApp }[] = []

  beforeAll(async () => {
    redis = await startRedis()
    guarded = new GuardedStore({
      store: new RedisStore({ url: redis.url }),
      failMode: 'closed',
      timeoutMs: 200,
    })
    for (const adapter of ADAPTERS) {
      const closed = await startApp(adapter, {
        store: guarded,
        tiers,
        logger: false,
        metrics,
        prefix: `c-${adapter}:`,
      })
      const open = await startApp(adapter, {
        store: guarded.withFailMode('open'),
        tiers,
        logger: false,
        prefix: `o-${adapter}:`,
      })
      apps.push({ adapter, closed, open })
    }
  })
  afterAll(async () => {
    for (const a of apps) await Promise.all([a.closed.close(), a.open.close()])
    await guarded.close()
    await redis.stop()
  })

  it('answers from Redis while it is up, then 503 (closed) or unchecked 200 (open) once it is gone', async () => {
    for (const { closed, open } of apps) {
      const up = await call(`${closed.url}/hello`)
      expect(up.status).toBe(200)
      expect(up.headers.get('ratelimit')).toMatch(/^"minute";r=99;/)
      expect((await call(`${open.url}/hello`)).headers.get('ratelimit')).toMatch(/^"minute";r=99;/)
    }
    await redis.kill()
    for (const { adapter, closed, open } of apps) {
      const down = await call(`${closed.url}/hello`)
      expect(down.status, adapter).toBe(503)
      expect(Number(down.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
      expect(down.body.error).toMatchObject({ code: 'store_unavailable', param: null })
      const unchecked = await call(`${open.url}/hello`)
      expect(unchecked.status, adapter).toBe(200)
      expect(unchecked.headers.get('ratelimit')).toBeNull()
      expect(unchecked.headers.get('x-ratelimit-limit')).toBeNull()
    }
    const text = (await metrics.render()).body
    expect(text).toContain(
      'sluice_decisions_total{tier="anonymous",limit="none",outcome="allowed",source="store"} 4',
    )
    expect(text).toContain(
      'sluice_decisions_total{tier="anonymous",limit="none",outcome="unavailable",source="none"} 4',
    )
  })
})
