import OpenAI, { RateLimitError } from 'openai'
import { request } from 'undici'
import { afterAll, describe, expect, it } from 'vitest'
import { newKey, STORE_KINDS, startTestGateway, stopRedis } from './helpers.js'

afterAll(stopRedis)

const messages = [{ role: 'user' as const, content: 'Explain weirs.' }]
const chatBody = (extra: Record<string, unknown> = {}) =>
  JSON.stringify({ model: 'gpt-4o-mini', messages, max_tokens: 20, ...extra })

describe.each(STORE_KINDS)(
  'dollar budgets, calls in flight, warnings, upstream failures (%s store)',
  (kind) => {
    it('a spent dollar budget is a 429 insufficient_quota with x-should-retry: false', async () => {
      const { key, entry } = newKey('budgeted', 'budget-1')
      const gw = await startTestGateway(kind, {
        tiers: {
          // The model costs $1 / $2 per 1M tokens; the daily budget is a thousandth of a cent.
          budgeted: {
            scope: 'key',
            limits: { daily: { kind: 'slidingWindow', unit: 'usd', limit: 0.0002, window: '1d' } },
          },
        },
        prices: { 'metered-model': { input: 1, output: 2 } },
        auth: { keys: [entry] },
      })
      try {
        const client = new OpenAI({ apiKey: key, baseURL: `${gw.url}/v1`, maxRetries: 3 })
        let throttled = 0
        gw.sluice.events.on('throttle', () => throttled++)
        let answered = 0
        let refusal: unknown
        for (let i = 0; i < 20 && refusal === undefined; i++) {
          try {
            await client.chat.completions.create({ model: 'metered-model', messages, max_tokens: 20 })
            answered++
          } catch (error) {
            refusal = error
          }
        }
        expect(answered).toBeGreaterThan(0)
        expect(refusal).toBeInstanceOf(RateLimitError)
        const e = refusal as RateLimitError
        expect(e.error).toMatchObject({ type: 'insufficient_quota', code: 'insufficient_quota' })
        // The SDK did not retry: the gateway said waiting for a refill is pointless today.
        expect(e.headers?.get('x-should-retry')).toBe('false')
        expect(throttled).toBe(1)
        await gw.settled()
        const spent = (await gw.ledgerRecords()).reduce((s, r) => s + r.usd, 0)
        expect(spent).toBeGreaterThan(0)
        expect(Math.abs((await gw.used('budgeted', 'key:budget-1', 'daily')) - spent)).toBeLessThan(1e-6)
      } finally {
        await gw.close()
      }
    })

    it('streams hold their in-flight slot until they end', async () => {
      const { key, entry } = newKey('narrow', 'narrow-1')
      const gw = await startTestGateway(kind, {
        tiers: {
          narrow: { scope: 'key', limits: { inflight: { kind: 'concurrency', limit: 2 } }, block: false },
        },
        auth: { keys: [entry] },
      })
      const post = (extra: Record<string, string> = {}, signal?: AbortSignal) =>
        request(`${gw.url}/v1/chat/completions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${key}`, ...extra },
          body: chatBody({ stream: true }),
          signal,
        })
      try {
        const held = [new AbortController(), new AbortController()]
        const open = await Promise.all(held.map((c) => post({ 'x-mock-fail': 'stall:2' }, c.signal)))
        expect(open.map((r) => r.statusCode)).toEqual([200, 200])
        const third = await post()
        const body = (await third.body.json()) as { error: { type: string; message: string } }
        expect(third.statusCode).toBe(429)
        expect(body.error.type).toBe('requests')
        expect(Number(third.headers['retry-after-ms'])).toBeGreaterThan(0)
        // One stream ends (its client leaves): its slot is free again.
        open[0]!.body.on('error', () => {})
        held[0]!.abort()
        while (gw.accounting.open.size > 1) await new Promise((r) => setTimeout(r, 10))
        let fourth = await post()
        for (let i = 0; i < 50 && fourth.statusCode === 429; i++) {
          await fourth.body.dump()
          await new Promise((r) => setTimeout(r, 20))
          fourth = await post()
        }
        expect(fourth.statusCode).toBe(200)
        await fourth.body.text()
        open[1]!.body.on('error', () => {})
        held[1]!.abort()
      } finally {
        await gw.close()
      }
    })

    it('warns in a header, never in the JSON body, when a limit is nearly spent', async () => {
      const { key, entry } = newKey('small', 'small-1')
      const gw = await startTestGateway(kind, {
        tiers: {
          small: { scope: 'key', limits: { daily: { kind: 'slidingWindow', limit: 10, window: '1d' } } },
        },
        auth: { keys: [entry] },
      })
      try {
        const client = new OpenAI({ apiKey: key, baseURL: `${gw.url}/v1`, maxRetries: 0 })
        const direct = new OpenAI({ apiKey: 'x', baseURL: gw.mock!.url, maxRetries: 0 })
        let warning: string | null = null
        for (let i = 0; i < 10 && warning === null; i++) {
          const { data, response } = await client.chat.completions
            .create({ model: 'gpt-4o-mini', messages })
            .withResponse()
          expect(data).toEqual(await direct.chat.completions.create({ model: 'gpt-4o-mini', messages }))
          warning = response.headers.get('x-ratelimit-warning')
        }
        expect(warning).toMatch(/left in limit "daily"/)
      } finally {
        await gw.close()
      }
    })

    it('upstream errors pass through; timeouts are 504; the prompt is charged once either way', async () => {
      const { key, entry } = newKey('meter', 'failing-1')
      const gw = await startTestGateway(kind, {
        tiers: {
          meter: {
            scope: 'key',
            limits: { tokens: { kind: 'fixedWindow', unit: 'tokens', limit: 1e9, window: '3650d' } },
          },
        },
        upstreams: { mock: { type: 'mock', headersTimeout: '2s' } },
        auth: { keys: [entry] },
      })
      try {
        const send = async (fail: string) => {
          const res = await request(`${gw.url}/v1/chat/completions`, {
            method: 'POST',
            headers: { authorization: `Bearer ${key}`, 'x-mock-fail': fail },
            body: chatBody(),
          })
          return {
            status: res.statusCode,
            headers: res.headers,
            body: (await res.body.json()) as { error: Record<string, unknown> },
          }
        }
        const failed = await send('500')
        expect(failed.status).toBe(500)
        expect(failed.body.error.type).toBe('server_error')
        expect(failed.headers['x-ratelimit-limit-tokens']).toBe('1000000000')
        const slow = await send('timeout')
        expect(slow.status).toBe(504)
        expect(slow.body.error).toMatchObject({ type: 'upstream_error', code: 'upstream_timeout' })
        await gw.settled()
        const prompts = gw.mock!.records.reduce((s, r) => s + r.promptTokens, 0)
        expect(await gw.used('meter', 'key:failing-1', 'tokens')).toBe(prompts)
        expect((await gw.ledgerRecords()).map((r) => r.outcome)).toEqual(['upstream_error', 'upstream_error'])
      } finally {
        await gw.close()
      }
    })
  },
)

describe('per-key limits', () => {
  it("a key's own limits are merged over its tier's", async () => {
    const { key, entry } = newKey('service', 'capped')
    const other = newKey('service', 'uncapped')
    const gw = await startTestGateway('memory', {
      auth: {
        keys: [
          { ...entry, limits: { daily: { kind: 'slidingWindow', limit: 2, window: '1d' } } },
          other.entry,
        ],
      },
    })
    try {
      const statuses = async (k: string) => {
        const out: number[] = []
        for (let i = 0; i < 3; i++) {
          const res = await request(`${gw.url}/v1/chat/completions`, {
            method: 'POST',
            headers: { 'x-api-key': k },
            body: chatBody(),
          })
          await res.body.text()
          out.push(res.statusCode)
        }
        return out
      }
      expect(await statuses(key)).toEqual([200, 200, 429])
      expect(await statuses(other.key)).toEqual([200, 200, 200])
    } finally {
      await gw.close()
    }
  })
})

describe('shadow mode and the allow list', () => {
  it('shadow mode lets a refused call through and logs it; the ledger still records it, unlimited', async () => {
    const { key, entry } = newKey('trial', 'trial-1')
    const gw = await startTestGateway('memory', {
      tiers: {
        trial: {
          scope: 'key',
          limits: { daily: { kind: 'slidingWindow', limit: 1, window: '1d' } },
          shadow: true,
        },
      },
      auth: { keys: [entry] },
    })
    try {
      let shadowed = 0
      gw.sluice.events.on('shadow', () => shadowed++)
      const statuses: number[] = []
      for (let i = 0; i < 3; i++) {
        const res = await request(`${gw.url}/v1/chat/completions`, {
          method: 'POST',
          headers: { 'x-api-key': key },
          body: chatBody(),
        })
        await res.body.text()
        statuses.push(res.statusCode)
      }
      expect(statuses).toEqual([200, 200, 200])
      expect(shadowed).toBe(2)
      await gw.settled()
      expect((await gw.ledgerRecords()).map((r) => r.limited)).toEqual([true, false, false])
    } finally {
      await gw.close()
    }
  })

  it('allow-listed keys are not limited at all', async () => {
    const { key, entry } = newKey('trial', 'vip')
    const gw = await startTestGateway('memory', {
      tiers: { trial: { scope: 'key', limits: { daily: { kind: 'fixedWindow', limit: 1, window: '1d' } } } },
      graduated: { allow: { keys: ['vip'] } },
      auth: { keys: [entry] },
    })
    try {
      for (let i = 0; i < 3; i++) {
        const res = await request(`${gw.url}/v1/chat/completions`, {
          method: 'POST',
          headers: { 'x-api-key': key },
          body: chatBody(),
        })
        await res.body.text()
        expect(res.statusCode).toBe(200)
        expect(res.headers['x-ratelimit-limit']).toBeUndefined()
      }
      expect(await gw.used('trial', 'key:vip', 'daily')).toBe(0)
    } finally {
      await gw.close()
    }
  })
})
