/**
 * Provider capacity shared by every tenant, through two gateway instances on one real Redis: the
 * deployments' limits and what the providers report (the mock's own account) are followed by both.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import type { GatewayConfigInput } from '../../src/gateway/config/schema.js'
import { EMPTY_ENTRY } from '../../src/gateway/deployments/board.js'
import type { MockRateLimits } from '../../src/gateway/mock/limits.js'
import { type MockUpstream, startMockUpstream } from '../../src/gateway/mock/server.js'
import { newKey, startTestGateway, stopRedis, type TestGateway } from '../gateway/helpers.js'

afterAll(stopRedis)

const TEN_YEARS = '3650d'
const bigTier = {
  scope: 'key' as const,
  limits: {
    calls: { kind: 'fixedWindow' as const, limit: 1e9, window: TEN_YEARS },
    tokens: { kind: 'fixedWindow' as const, unit: 'tokens', limit: 1e12, window: TEN_YEARS },
  },
  block: false as const,
}

let running: { gateways: TestGateway[]; mocks: MockUpstream[] } = { gateways: [], mocks: [] }
afterEach(async () => {
  for (const gw of running.gateways) await gw.close()
  for (const m of running.mocks) await m.close()
  running = { gateways: [], mocks: [] }
})

let prefixes = 0
/** Two mocks (each its own provider account) and two gateways sharing one Redis and one prefix. */
async function setUp(options: {
  accounts: [MockRateLimits | undefined, MockRateLimits | undefined]
  limits?: Record<string, number>
  tenants: number
}) {
  const mocks = [
    await startMockUpstream({ ...(options.accounts[0] && { rateLimits: options.accounts[0] }) }),
    await startMockUpstream({ ...(options.accounts[1] && { rateLimits: options.accounts[1] }) }),
  ]
  running.mocks.push(...mocks)
  const keys = Array.from({ length: options.tenants }, (_, i) => newKey('big', `tenant-${i}`))
  const config: GatewayConfigInput = {
    prefix: `cap-${process.pid}-${++prefixes}:`,
    tiers: { big: bigTier },
    auth: { keys: keys.map((k) => k.entry) },
    upstreams: {
      a: { type: 'openai', baseUrl: mocks[0]!.url },
      b: { type: 'openai', baseUrl: mocks[1]!.url },
    },
    deployments: {
      m: [
        { name: 'dep-a', upstream: 'a', ...(options.limits && { limits: options.limits }) },
        { name: 'dep-b', upstream: 'b', ...(options.limits && { limits: options.limits }) },
      ],
    },
  }
  const gateways = [await startTestGateway('redis', config), await startTestGateway('redis', config)]
  running.gateways.push(...gateways)
  return { mocks, gateways, keys: keys.map((k) => k.key) }
}

async function call(gw: TestGateway, key: string) {
  const res = await fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'm', max_tokens: 16, messages: [{ role: 'user', content: 'hello' }] }),
  })
  const body = (await res.json()) as { error?: { type: string; message: string } }
  return {
    status: res.status,
    retryAfter: res.headers.get('retry-after'),
    shouldRetry: res.headers.get('x-should-retry'),
    body,
  }
}

const okCount = (m: MockUpstream) => m.records.filter((r) => r.outcome === 'ok').length

describe('provider capacity across two instances on one Redis', () => {
  it('2 deployments × 60 RPM, 3 tenants × 100 concurrent calls: each mock gets at most 60, refuses none; every call is answered', async () => {
    const { mocks, gateways, keys } = await setUp({
      accounts: [{ requests: 60 }, { requests: 60 }],
      limits: { requests: 60 },
      tenants: 3,
    })
    const calls = keys.flatMap((key, t) =>
      Array.from({ length: 100 }, (_, i) => call(gateways[(t + i) % 2]!, key)),
    )
    const results = await Promise.all(calls)
    expect(results).toHaveLength(300)
    for (const m of mocks) {
      expect(m.records.length).toBeLessThanOrEqual(60)
      expect(m.account.refusals).toBe(0)
    }
    const served = results.filter((r) => r.status === 200)
    const refused = results.filter((r) => r.status !== 200)
    expect(served.length).toBe(okCount(mocks[0]!) + okCount(mocks[1]!))
    // Each deployment's 60 in the window were used (the run takes far less than a minute).
    expect(served.length).toBe(120)
    for (const r of refused) {
      expect(r.status).toBe(429)
      expect(r.body.error?.type).toBe('service_capacity')
      expect(r.shouldRetry).toBe('true')
      // The earliest a deployment has room again: when its first call of the minute leaves the window.
      expect(Number(r.retryAfter)).toBeGreaterThanOrEqual(1)
      expect(Number(r.retryAfter)).toBeLessThanOrEqual(60)
    }
  }, 120_000)

  it('a deployment answering 429 with retry-after 5 cools down on every instance; no client sees an error', async () => {
    const { mocks, gateways, keys } = await setUp({ accounts: [undefined, undefined], tenants: 1 })
    mocks[0]!.account.refuse(5, 600_000)
    // Until a call lands on dep-a, nothing is known of its refusals.
    let i = 0
    while (mocks[0]!.account.refusals === 0 && i < 50) {
      const r = await call(gateways[i % 2]!, keys[0]!)
      expect(r.status).toBe(200)
      i++
    }
    expect(mocks[0]!.account.refusals).toBe(1)
    // Both instances see dep-a cooling down for (at most) its retry-after.
    for (const gw of gateways) {
      const [a] = await gw.deployments!.board.read(['dep-a'])
      expect(a!.coolMs).toBeGreaterThan(0)
      expect(a!.coolMs).toBeLessThanOrEqual(5_000)
    }
    const after = await Promise.all(Array.from({ length: 20 }, (_, j) => call(gateways[j % 2]!, keys[0]!)))
    expect(after.every((r) => r.status === 200)).toBe(true)
    const moved = await gateways.reduce(
      async (sum, gw) =>
        (await sum) +
        Number(
          /sluice_deployment_fallbacks_total\{from="dep-a",to="dep-b"\} (\d+)/.exec(
            await gw.metrics.registry.getSingleMetricAsString('sluice_deployment_fallbacks_total'),
          )?.[1] ?? 0,
        ),
      Promise.resolve(0),
    )
    expect(moved).toBe(mocks[0]!.account.refusals)
    const cooled = await gateways[0]!.metrics.registry.getSingleMetricAsString(
      'sluice_deployment_cooldowns_total',
    )
    const cooled2 = await gateways[1]!.metrics.registry.getSingleMetricAsString(
      'sluice_deployment_cooldowns_total',
    )
    expect(`${cooled}\n${cooled2}`).toMatch(/deployment="dep-a"} 1/)
  }, 120_000)

  it('a provider reporting a smaller account than configured is followed: no 429 after its first answer', async () => {
    // The config thinks 60 a minute; each provider account takes 5.
    const { mocks, gateways, keys } = await setUp({
      accounts: [{ requests: 5 }, { requests: 5 }],
      limits: { requests: 60 },
      tenants: 1,
    })
    // One answer from each (dep-a and dep-b are picked by weight: call until both answered).
    let i = 0
    while ((mocks[0]!.records.length === 0 || mocks[1]!.records.length === 0) && i < 40) {
      expect((await call(gateways[i % 2]!, keys[0]!)).status).toBe(200)
      i++
    }
    const before = mocks[0]!.records.length + mocks[1]!.records.length
    const burst = await Promise.all(Array.from({ length: 40 }, (_, j) => call(gateways[j % 2]!, keys[0]!)))
    expect(mocks[0]!.account.refusals + mocks[1]!.account.refusals).toBe(0)
    for (const m of mocks) expect(m.records.length).toBeLessThanOrEqual(5)
    const served = burst.filter((r) => r.status === 200).length
    expect(served + before).toBe(okCount(mocks[0]!) + okCount(mocks[1]!))
    expect(
      burst.filter((r) => r.status !== 200).every((r) => r.body.error?.type === 'service_capacity'),
    ).toBe(true)
    // The limiter in use is the provider's 5, not the configured 60.
    const d = gateways[1]!.deployments!.of('m')![0]!
    const [entry] = await gateways[1]!.deployments!.board.read([d.name])
    expect(entry!.limitRequests).toBe(5)
    const limiter = gateways[1]!.deployments!.limiterOf(d, gateways[1]!.store, entry!)!
    expect(limiter.definitions[0]).toMatchObject({ limit: 5 })
    expect(
      gateways[1]!.deployments!.limiterOf(d, gateways[1]!.store, EMPTY_ENTRY)!.definitions[0],
    ).toMatchObject({
      limit: 60,
    })
  }, 120_000)

  it('a fallback moves the reservation: the tokens charged are the tokens used, once', async () => {
    const { mocks, gateways, keys } = await setUp({
      accounts: [undefined, undefined],
      limits: { requests: 1000, tokens: 1_000_000 },
      tenants: 1,
    })
    mocks[0]!.account.refuse(5, 600_000)
    const gw = gateways[0]!
    let i = 0
    while (mocks[0]!.account.refusals === 0 && i < 50) {
      expect((await call(gateways[i % 2]!, keys[0]!)).status).toBe(200)
      i++
    }
    for (const g of gateways) await g.settled()
    const used = mocks[1]!.records.reduce((s, r) => s + r.promptTokens + r.completionTokens, 0)
    expect(used).toBeGreaterThan(0)
    // The tenant: charged exactly what dep-b's provider counted, once.
    expect(await gw.used('big', 'key:tenant-0', 'tokens')).toBe(used)
    // The deployments: dep-a (refused before any output) holds nothing; dep-b what it served.
    const [a, b] = gw.deployments!.of('m')!
    const usedOf = async (d: typeof a) => {
      const limiter = gw.deployments!.limiterOf(d!, gw.store, EMPTY_ENTRY)!
      const peek = await limiter.peek(d!.subject, { requests: 0, tokens: 0 })
      const tokens = peek.limits.find((l) => l.name === 'tokens')!
      return tokens.limit - tokens.remaining
    }
    expect(await usedOf(a)).toBe(0)
    expect(await usedOf(b)).toBe(used)
    const rows = [...(await gateways[0]!.ledgerRecords()), ...(await gateways[1]!.ledgerRecords())]
    const movedRow = rows.find((r) => r.failedDeployments !== undefined)
    expect(movedRow).toMatchObject({ deployment: 'dep-b', failedDeployments: ['dep-a'], status: 200 })
    expect(rows.reduce((s, r) => s + r.tokens, 0)).toBe(used)
  }, 120_000)
})
