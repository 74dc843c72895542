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
        tiers: { anonymous: { limits: { hourly: { kind: 'fixedWindow', limit: 2, window: '1h' } } } },
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
