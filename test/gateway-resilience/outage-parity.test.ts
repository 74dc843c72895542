/**
 * The middleware and the gateway admit through the same step (http/admit.ts), so the same store
 * outage gets the same answer from both: Redis (a real redis-server) stopped, a tier that fails
 * closed → the same 503, body and retry headers from an Express app and from the gateway.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Gateway, startGateway } from '../../src/gateway/index.js'
import { RedisStore, slidingWindow } from '../../src/index.js'
import { GuardedStore } from '../../src/store/guarded.js'
import { type RedisServer, startRedis } from '../helpers/redis-server.js'
import { startApp, type TestApp } from '../http/apps.js'

/** The headers a refusal is made of (hop-by-hop and framework headers left out). */
const ANSWER_HEADERS = ['retry-after', 'retry-after-ms', 'x-should-retry', 'www-authenticate']

interface Seen {
  status: number
  body: unknown
  headers: Record<string, string | null>
}

async function see(url: string, headers: Record<string, string> = {}): Promise<Seen> {
  const res = await fetch(url, { headers })
  const body = await res.json()
  return {
    status: res.status,
    body,
    headers: Object.fromEntries(ANSWER_HEADERS.map((h) => [h, res.headers.get(h)])),
  }
}

describe('a store outage through the Express adapter and through the gateway', () => {
  let redis: RedisServer
  let guarded: GuardedStore
  let app: TestApp
  let gateway: Gateway

  beforeAll(async () => {
    redis = await startRedis()
    guarded = new GuardedStore({
      store: new RedisStore({ url: redis.url }),
      failMode: 'closed',
      timeoutMs: 200,
    })
    app = await startApp('express', {
      store: guarded,
      logger: false,
      tiers: {
        anonymous: { scope: 'ip', limits: { minute: slidingWindow({ limit: 100, windowMs: 60_000 }) } },
      },
    })
    gateway = await startGateway(
      {
        port: 0,
        host: '127.0.0.1',
        store: { type: 'redis', url: redis.url, failMode: 'closed' },
        ledger: { path: false },
      },
      { env: {}, logger: false },
    )
  })
  afterAll(async () => {
    await app?.close()
    await gateway?.close()
    await guarded?.close()
    await redis?.stop()
  })

  it('gives the same status, body and headers', async () => {
    const key = { authorization: `Bearer ${gateway.demoKey}` }
    expect((await see(`${app.url}/hello`)).status).toBe(200)
    expect((await see(`${gateway.url}/v1/models`, key)).status).toBe(200)

    await redis.kill()
    const middleware = await see(`${app.url}/hello`)
    const viaGateway = await see(`${gateway.url}/v1/models`, key)

    expect(middleware.status).toBe(503)
    expect(middleware.body).toEqual({
      error: {
        message: expect.stringMatching(
          /^Rate limits cannot be checked right now \(the store is unavailable\)\./,
        ),
        type: 'server_error',
        param: null,
        code: 'store_unavailable',
      },
    })
    expect(Number(middleware.headers['retry-after'])).toBeGreaterThanOrEqual(1)
    expect(Number(middleware.headers['retry-after-ms'])).toBeGreaterThanOrEqual(1)
    expect(viaGateway).toEqual(middleware)
  })
})
