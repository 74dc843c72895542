import { afterAll, describe, expect, it } from 'vitest'
import type { GatewayConfigInput } from '../../src/gateway/config/schema.js'
import { STORE_KINDS, startTestGateway, stopRedis, type TestGateway } from '../gateway/helpers.js'

afterAll(stopRedis)

function chat(gw: TestGateway, model = 'm', extra: Record<string, unknown> = {}) {
  return fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model, max_tokens: 20, messages: [{ role: 'user', content: 'hello' }], ...extra }),
  })
}

const twoMocks = (limits: [number, number], more: GatewayConfigInput = {}): GatewayConfigInput => ({
  upstreams: { a: { type: 'mock' }, b: { type: 'mock' } },
  deployments: {
    m: [
      { name: 'dep-a', upstream: 'a', model: 'provider-a', limits: { requests: limits[0] } },
      { name: 'dep-b', upstream: 'b', limits: { requests: limits[1] } },
    ],
  },
  ...more,
})

const received = (gw: TestGateway, upstream: string) => gw.upstreams.get(upstream)!.mock!.records

describe.each(STORE_KINDS)('deployments (%s store)', (kind) => {
  it('admits a call only where a deployment has room; then answers the service capacity, not the quota', async () => {
    const gw = await startTestGateway(kind, twoMocks([3, 2]))
    try {
      const statuses: number[] = []
      for (let i = 0; i < 5; i++) statuses.push((await chat(gw)).status)
      expect(statuses).toEqual([200, 200, 200, 200, 200])
      expect(received(gw, 'a')).toHaveLength(3)
      expect(received(gw, 'b')).toHaveLength(2)
      // The provider's model name went upstream on dep-a; the client's on dep-b.
      expect(received(gw, 'a').every((r) => r.model === 'provider-a')).toBe(true)
      expect(received(gw, 'b').every((r) => r.model === 'm')).toBe(true)

      const full = await chat(gw)
      expect(full.status).toBe(429)
      expect(full.headers.get('x-should-retry')).toBe('true')
      const retry = Number(full.headers.get('retry-after'))
      expect(retry).toBeGreaterThanOrEqual(1)
      expect(retry).toBeLessThanOrEqual(60)
      const body = (await full.json()) as { error: { type: string; message: string } }
      expect(body.error.type).toBe('service_capacity')
      expect(body.error.message).toMatch(/not your quota/)
      expect(received(gw, 'a')).toHaveLength(3)
      expect(received(gw, 'b')).toHaveLength(2)

      await gw.settled()
      const rows = await gw.ledgerRecords()
      expect(rows.filter((r) => r.deployment === 'dep-a')).toHaveLength(3)
      expect(rows.filter((r) => r.deployment === 'dep-b')).toHaveLength(2)
      const metrics = await gw.metrics.registry.getSingleMetricAsString('sluice_deployment_requests_total')
      expect(metrics).toMatch(/deployment="dep-a",status="200"} 3/)
    } finally {
      await gw.close()
    }
  })

  it("a tenant refused by its own limits gets its own 429, and the deployment's count is untouched", async () => {
    const gw = await startTestGateway(
      kind,
      twoMocks([50, 50], {
        tiers: { anonymous: { limits: { hourly: { kind: 'slidingWindow', limit: 2, window: '1h' } } } },
      }),
    )
    try {
      expect((await chat(gw)).status).toBe(200)
      expect((await chat(gw)).status).toBe(200)
      const refused = await chat(gw)
      expect(refused.status).toBe(429)
      const body = (await refused.json()) as { error: { type: string } }
      expect(body.error.type).not.toBe('service_capacity')
      expect(received(gw, 'a').length + received(gw, 'b').length).toBe(2)
      // The deployment's limits never show in the client's headers.
      const ok = refused.headers.get('ratelimit-policy') ?? ''
      expect(ok).not.toMatch(/deployment/)
    } finally {
      await gw.close()
    }
  })
})

describe('fallbacks', () => {
  it('a refused connection moves the call to the other deployment; the ledger names both', async () => {
    const gw = await startTestGateway('memory', {
      upstreams: {
        down: { type: 'openai', baseUrl: 'http://127.0.0.1:9/v1', connectTimeout: '2s' },
        b: { type: 'mock' },
      },
      deployments: {
        m: [
          { name: 'dep-down', upstream: 'down', weight: 1000 },
          { name: 'dep-b', upstream: 'b', weight: 0.001 },
        ],
      },
    })
    try {
      const res = await chat(gw)
      expect(res.status).toBe(200)
      await gw.settled()
      const [row] = await gw.ledgerRecords()
      expect(row).toMatchObject({ deployment: 'dep-b', failedDeployments: ['dep-down'], status: 200 })
      expect(received(gw, 'b')).toHaveLength(1)
    } finally {
      await gw.close()
    }
  })

  it('a stream is never retried once its first byte went out', async () => {
    const gw = await startTestGateway('memory', {
      upstreams: { a: { type: 'mock' }, b: { type: 'mock' } },
      deployments: {
        m: [
          { name: 'dep-a', upstream: 'a', weight: 1000 },
          { name: 'dep-b', upstream: 'b', weight: 0.001 },
        ],
      },
    })
    try {
      const res = await fetch(`${gw.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-mock-fail': 'cut:2' },
        body: JSON.stringify({ model: 'm', stream: true, messages: [{ role: 'user', content: 'hello' }] }),
      })
      expect(res.status).toBe(200)
      await res.text().catch(() => '')
      await gw.settled()
      expect(received(gw, 'a').map((r) => r.outcome)).toEqual(['cut'])
      expect(received(gw, 'b')).toHaveLength(0)
      const [row] = await gw.ledgerRecords()
      expect(row).toMatchObject({ deployment: 'dep-a', outcome: 'cut' })
      expect(row!.failedDeployments).toBeUndefined()
    } finally {
      await gw.close()
    }
  })

  it('moves to the fallback model when every deployment of the model failed; when all cool down, a 503 of the service', async () => {
    const gw = await startTestGateway('memory', {
      upstreams: { a: { type: 'mock' }, c: { type: 'mock' } },
      deployments: {
        m: [{ name: 'dep-a', upstream: 'a' }],
        small: [{ name: 'dep-small', upstream: 'c', model: 'small-v2' }],
      },
      fallbacks: { m: 'small' },
    })
    try {
      gw.upstreams.get('a')!.mock!.account.refuse(5, 600_000)
      expect((await chat(gw)).status).toBe(200)
      expect(received(gw, 'c').map((r) => r.model)).toEqual(['small-v2'])
      // dep-a now cools down: the next call goes straight to the fallback's deployment.
      expect((await chat(gw)).status).toBe(200)
      expect(received(gw, 'a')).toHaveLength(1)
      // With the fallback cooling down too, and dep-a the model's only deployment: a 503 of the service.
      gw.upstreams.get('c')!.mock!.account.refuse(5, 600_000)
      await chat(gw, 'small')
      const res = await chat(gw)
      expect(res.status).toBe(503)
      expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
      expect(Number(res.headers.get('retry-after'))).toBeLessThanOrEqual(5)
      expect(((await res.json()) as { error: { type: string } }).error.type).toBe('service_capacity')
    } finally {
      await gw.close()
    }
  })

  it('room(): whether a deployment has room now, and when one will (for callers that wait)', async () => {
    const gw = await startTestGateway('memory', twoMocks([1, 1]))
    try {
      const room = () => gw.deployments!.room('m', { requests: 1, tokens: 10 }, gw.store)
      expect(await room()).toEqual({ now: true, retryAfterMs: 0 })
      expect((await chat(gw)).status).toBe(200)
      expect((await room())?.now).toBe(true)
      expect((await chat(gw)).status).toBe(200)
      const full = await room()
      expect(full?.now).toBe(false)
      expect(full!.retryAfterMs).toBeGreaterThan(0)
      expect(full!.retryAfterMs).toBeLessThanOrEqual(60_000)
      expect(await gw.deployments!.room('not-deployed', { requests: 1 }, gw.store)).toBeUndefined()
    } finally {
      await gw.close()
    }
  })
})

describe('the banner and start-up warnings', () => {
  it("names each model's deployments, and the models behind a deployment's upstream", async () => {
    const { routeLines } = await import('../../src/gateway/banner.js')
    const { startupWarnings } = await import('../../src/gateway/startup.js')
    const config: GatewayConfigInput = {
      upstreams: {
        a: { type: 'mock' },
        azure: { type: 'openai', baseUrl: 'http://127.0.0.1:9/v1', apiKeyEnv: 'AZ_KEY' },
      },
      deployments: {
        m: [
          { name: 'dep-a', upstream: 'a' },
          { upstream: 'azure', model: 'gpt4o-east' },
        ],
      },
    }
    const gw = await startTestGateway('memory', config)
    try {
      const lines = routeLines(gw.config, gw.upstreams).join('\n')
      expect(lines).toMatch(/m → deployments dep-a \(a\), azure\/gpt4o-east \(azure\)/)
      expect(startupWarnings(gw.config, {}).join('\n')).toMatch(
        /upstreams\.azure: \$AZ_KEY is not set, so calls routed to "azure" \(m \(deployment\)\)/,
      )
    } finally {
      await gw.close()
    }
  })
})
