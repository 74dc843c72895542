/**
 * Through the gateway with the official openai client: a deployment's limits are a capacity
 * tenants wait on in fair order (a light tenant sees no 429 while a heavy one is queued), and the
 * x-sluice-priority header orders waiters for tiers that allow it, ignored for the others.
 */
import OpenAI, { BadRequestError } from 'openai'
import { request } from 'undici'
import { afterAll, describe, expect, it } from 'vitest'
import type { GatewayConfigInput } from '../../src/gateway/config/schema.js'
import { startMockUpstream } from '../../src/gateway/mock/server.js'
import { newKey, STORE_KINDS, startTestGateway, stopRedis, type TestGateway } from './helpers.js'

afterAll(stopRedis)

const messages = [{ role: 'user' as const, content: 'Explain weirs.' }]
const roomy = { calls: { kind: 'fixedWindow' as const, limit: 1_000_000, window: '1h' } }

/** How many requests of `tier` wait in this gateway's queues now (/metrics). */
async function waiting(gw: TestGateway, tier: string): Promise<number> {
  const text = await (await request(`${gw.url}/metrics`)).body.text()
  const line = text.split('\n').find((l) => l.startsWith(`sluice_queue_waiting_requests{tier="${tier}"}`))
  return line === undefined ? 0 : Number(line.split(' ').pop())
}

async function until(check: () => Promise<boolean>): Promise<void> {
  while (!(await check())) await new Promise((r) => setTimeout(r, 10))
}

const client = (gw: TestGateway, key: string, headers?: Record<string, string>) =>
  new OpenAI({
    apiKey: key,
    baseURL: `${gw.url}/v1`,
    maxRetries: 0,
    ...(headers && { defaultHeaders: headers }),
  })

describe.each(STORE_KINDS)('waiting on a deployment shared by tenants (%s store)', (kind) => {
  it('a light tenant sees no 429 while a heavy one is queued on the deployment', async () => {
    const mock = await startMockUpstream()
    const heavy = newKey('heavy', 'heavy-1')
    const light = newKey('light', 'light-1')
    const config: GatewayConfigInput = {
      tiers: {
        heavy: { scope: 'key', limits: roomy, queue: { maxWait: '30s' }, block: false },
        light: { scope: 'key', limits: roomy, queue: { maxWait: '30s' }, block: false },
      },
      auth: { keys: [heavy.entry, light.entry] },
      upstreams: { mock: { type: 'openai', baseUrl: mock.url } },
      deployments: {
        'gpt-4o-mini': [{ name: 'shared', upstream: 'mock', limits: { requests: 3, window: '1s' } }],
      },
    }
    const gw = await startTestGateway(kind, config)
    try {
      const heavyClient = client(gw, heavy.key)
      const burst = Array.from({ length: 9 }, () =>
        heavyClient.chat.completions.create({ model: 'gpt-4o-mini', messages, max_tokens: 5 }),
      )
      await until(async () => (await waiting(gw, 'heavy')) >= 3)
      const lightClient = client(gw, light.key)
      const lightCalls: { queueMs: string | null }[] = []
      for (let i = 0; i < 2; i++) {
        const { response } = await lightClient.chat.completions
          .create({ model: 'gpt-4o-mini', messages, max_tokens: 5 })
          .withResponse()
        lightCalls.push({ queueMs: response.headers.get('x-sluice-queue-ms') })
      }
      // No 429 for the light tenant: its calls waited on the deployment's queue, in fair order.
      expect(lightCalls).toHaveLength(2)
      expect(lightCalls.some((c) => c.queueMs !== null)).toBe(true)
      // The heavy tenant got the rest, every call of it admitted after waiting its turn.
      const outcomes = await Promise.allSettled(burst)
      expect(outcomes.filter((o) => o.status === 'rejected')).toHaveLength(0)
      expect(mock.records.filter((r) => r.outcome === 'ok')).toHaveLength(11)
    } finally {
      await gw.close()
      await mock.close()
    }
  })

  it('still answers a spent deployment budget at once, without waiting', async () => {
    const mock = await startMockUpstream()
    const tenant = newKey('waits', 'waits-1')
    const gw = await startTestGateway(kind, {
      tiers: { waits: { scope: 'key', limits: roomy, queue: { maxWait: '30s' }, block: false } },
      auth: { keys: [tenant.entry] },
      prices: { 'gpt-4o-mini': { input: 1_000_000, output: 1_000_000 } },
      upstreams: { mock: { type: 'openai', baseUrl: mock.url } },
      deployments: {
        'gpt-4o-mini': [
          { name: 'paid', upstream: 'mock', limits: { usdPerDay: 50, requests: 1, window: '3s' } },
        ],
      },
    })
    try {
      const c = client(gw, tenant.key)
      // The deployment's rate limit is waited for …
      await c.chat.completions.create({ model: 'gpt-4o-mini', messages, max_tokens: 5 })
      const { response } = await c.chat.completions
        .create({ model: 'gpt-4o-mini', messages, max_tokens: 5 })
        .withResponse()
      expect(response.headers.get('x-sluice-queue-ms')).not.toBeNull()
      // … its budget, once spent, is answered at once.
      const statuses: number[] = []
      for (let i = 0; i < 20 && statuses.at(-1) !== 429; i++) {
        try {
          await c.chat.completions.create({ model: 'gpt-4o-mini', messages, max_tokens: 5 })
          statuses.push(200)
        } catch (error) {
          statuses.push((error as { status: number }).status)
        }
      }
      expect(statuses.at(-1)).toBe(429)
      expect(await waiting(gw, 'waits')).toBe(0)
    } finally {
      await gw.close()
      await mock.close()
    }
  })
})

describe.each(STORE_KINDS)('the x-sluice-priority header (%s store)', (kind) => {
  const tier = (priorities: boolean) => ({
    scope: 'key' as const,
    limits: { burst: { kind: 'tokenBucket' as const, capacity: 1, refillPerSecond: 1 } },
    queue: { maxWait: '30s', ...(priorities && { priorities: true }) },
    block: false,
  })

  /** Fills the bucket, queues three normal calls, then a high one: the order they were admitted. */
  async function order(gw: TestGateway, key: string, tierName: string): Promise<string[]> {
    const normal = client(gw, key)
    const high = client(gw, key, { 'x-sluice-priority': 'high' })
    await normal.chat.completions.create({ model: 'gpt-4o-mini', messages, max_tokens: 5 })
    const done: string[] = []
    const call = (c: OpenAI, name: string) =>
      c.chat.completions.create({ model: 'gpt-4o-mini', messages, max_tokens: 5 }).then(() => done.push(name))
    const calls = [call(normal, 'n1'), call(normal, 'n2'), call(normal, 'n3')]
    await until(async () => (await waiting(gw, tierName)) >= 3)
    calls.push(call(high, 'high'))
    await Promise.all(calls)
    return done
  }

  it('admits an allowed tier’s high-priority call ahead of its normal ones; another tier is unaffected', async () => {
    const allowed = newKey('allowed', 'allowed-1')
    const plain = newKey('plain', 'plain-1')
    const gw = await startTestGateway(kind, {
      tiers: { allowed: tier(true), plain: tier(false) },
      auth: { keys: [allowed.entry, plain.entry] },
    })
    try {
      expect((await order(gw, allowed.key, 'allowed')).indexOf('high')).toBeLessThanOrEqual(1)
      // The same header from a tier that does not allow it: ignored, the call waits its turn.
      expect((await order(gw, plain.key, 'plain')).indexOf('high')).toBe(3)
      // A bad value from a tier that does not allow the header is ignored too …
      const ignored = client(gw, plain.key, { 'x-sluice-priority': 'urgent' })
      await expect(
        ignored.chat.completions.create({ model: 'gpt-4o-mini', messages, max_tokens: 5 }),
      ).resolves.toBeDefined()
      // … and a 400 naming the header from one that does.
      const bad = client(gw, allowed.key, { 'x-sluice-priority': 'urgent' })
      const error = await bad.chat.completions
        .create({ model: 'gpt-4o-mini', messages, max_tokens: 5 })
        .catch((e: unknown) => e)
      expect(error).toBeInstanceOf(BadRequestError)
      expect((error as BadRequestError).message).toMatch(/x-sluice-priority.*"high", "normal" or "low"/)
    } finally {
      await gw.close()
    }
  })

  it('takes queue.priorities in sluice.yaml, and rejects a bad one naming the field', async () => {
    const gw = await startTestGateway(kind, {
      tiers: { t: { scope: 'key', limits: roomy, queue: { maxWait: '1s', priorities: true } } },
    })
    await gw.close()
    await expect(
      startTestGateway(kind, {
        tiers: { t: { scope: 'key', limits: roomy, queue: { maxWait: '1s', priorities: 'yes' } } },
      } as never),
    ).rejects.toThrow(/priorities/)
  })
})
