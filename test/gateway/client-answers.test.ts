/**
 * What `sluice serve` tells clients, through the gateway with its mock upstream: long waits say
 * `x-should-retry: false` (the threshold is `graduated.maxRetryWait`), the default anonymous tier
 * is 20 calls per rolling hour, and a malformed Authorization header is a 401, not anonymous.
 */
import OpenAI, { RateLimitError } from 'openai'
import { parseList } from 'structured-headers'
import { afterEach, describe, expect, it } from 'vitest'
import { ConfigError, parseConfig } from '../../src/gateway/config/load.js'
import type { GatewayConfigInput } from '../../src/gateway/config/schema.js'
import { sluiceOptions } from '../../src/gateway/http-options.js'
import { type Gateway, startGateway } from '../../src/gateway/index.js'
import { MemoryStore } from '../../src/store/memory.js'
import { newKey } from './helpers.js'

const open: { gateway: Gateway; store: MemoryStore }[] = []
afterEach(async () => {
  for (const { gateway, store } of open.splice(0)) {
    await gateway.close()
    await store.close()
  }
})

/** A gateway on a memory store whose clock the test may set (`clock.now`; real time by default). */
async function gatewayWith(config: GatewayConfigInput = {}) {
  const clock = { now: undefined as number | undefined }
  const store = new MemoryStore({ now: () => clock.now ?? Date.now() })
  const gateway = await startGateway(
    { port: 0, ledger: { path: false }, ...config },
    { logger: false, store, env: {} },
  )
  open.push({ gateway, store })
  const chat = (headers: Record<string, string> = {}) =>
    fetch(`${gateway.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: 'hi' }],
        max_tokens: 8,
      }),
    }).then(async (res) => ({
      status: res.status,
      headers: res.headers,
      body: (await res.json()) as { error: { message: string; code: string } },
    }))
  return { gateway, clock, chat }
}

describe('graduated.maxRetryWait', () => {
  it('is a duration in sluice.yaml, handed to the HTTP core; a bad value names its path', () => {
    const config = parseConfig({ graduated: { maxRetryWait: '2h' } })
    expect(sluiceOptions(config, { store: new MemoryStore(), logger: false }).maxRetryWaitMs).toBe(7_200_000)
    expect(
      sluiceOptions(parseConfig({}), { store: new MemoryStore(), logger: false }).maxRetryWaitMs,
    ).toBeUndefined()
    expect(() => parseConfig({ graduated: { maxRetryWait: 'soon' } })).toThrow(ConfigError)
    expect(() => parseConfig({ graduated: { maxRetryWait: 'soon' } })).toThrow(/graduated\.maxRetryWait/)
  })

  it('the anonymous tier spent: x-should-retry: false by default (a wait of most of an hour)', async () => {
    const { chat } = await gatewayWith()
    for (let i = 0; i < 20; i++) expect((await chat()).status).toBe(200)
    const refused = await chat()
    expect(refused.status).toBe(429)
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(60)
    expect(refused.headers.get('x-should-retry')).toBe('false')
    expect(refused.body.error.message).toMatch(/Please try again in \d+m/)
    const [name, params] = parseList(refused.headers.get('ratelimit')!)[0]!
    expect(name).toBe('hourly')
    expect(params.get('r')).toBe(0)
    expect(params.get('t') as number).toBeLessThanOrEqual(3600)
  })

  it('with maxRetryWait: 2h, the same wait is one clients may sleep through', async () => {
    const { chat } = await gatewayWith({ graduated: { maxRetryWait: '2h' } })
    for (let i = 0; i < 20; i++) await chat()
    const refused = await chat()
    expect(refused.status).toBe(429)
    expect(refused.headers.get('x-should-retry')).toBeNull()
  })

  it('the openai client fails at once on a keyed tier spent for the hour', async () => {
    const { key, entry } = newKey('hourly5', 'h5')
    const { gateway } = await gatewayWith({
      tiers: {
        hourly5: { scope: 'key', limits: { hourly: { kind: 'slidingLog', limit: 5, window: '1h' } } },
      },
      auth: { keys: [entry] },
    })
    const throttled: unknown[] = []
    gateway.sluice.events.on('throttle', (e) => throttled.push(e))
    const client = new OpenAI({ apiKey: key, baseURL: `${gateway.url}/v1` }) // maxRetries: 2
    const ask = () =>
      client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] })
    for (let i = 0; i < 5; i++) await ask()
    const error = await ask().catch((e: unknown) => e)
    expect(error).toBeInstanceOf(RateLimitError)
    expect((error as RateLimitError).message).toMatch(/Please try again in \d+m/)
    expect(throttled).toHaveLength(1) // not retried
  })
})

describe('the default anonymous tier through the gateway', () => {
  it('is 20 calls per rolling hour: 20 at 07:59, none at 08:02 or 08:05, one at 08:59', async () => {
    const { chat, clock } = await gatewayWith()
    clock.now = Date.UTC(2026, 0, 5, 7, 59)
    for (let i = 0; i < 20; i++) expect((await chat()).status).toBe(200)
    for (const minute of [2, 5, 58]) {
      clock.now = Date.UTC(2026, 0, 5, 8, minute)
      expect((await chat()).status).toBe(429)
    }
    clock.now = Date.UTC(2026, 0, 5, 8, 59) + 1
    expect((await chat()).status).toBe(200)
  })
})

describe('a malformed Authorization header through the gateway', () => {
  it('is a 401 (and a failed-auth count), never the anonymous tier', async () => {
    const { key, entry } = newKey('service', 'svc')
    const { chat } = await gatewayWith({ auth: { keys: [entry], failedAuth: { limit: 2, window: '10m' } } })
    const replies = []
    for (const authorization of [`Bearer ${key} ${key}`, 'Basic dXNlcjpwYXNzd29yZA==', 'Bearer']) {
      replies.push(await chat({ authorization }))
    }
    expect(replies.map((r) => r.status)).toEqual([401, 401, 429])
    expect(replies[0]!.body.error.code).toBe('invalid_api_key')
    expect((await chat({ authorization: `Bearer ${key}` })).status).toBe(200)
  })
})
