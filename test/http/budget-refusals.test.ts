/**
 * A dollar budget's refusal says what is true: "spent" only when nothing is left; otherwise that
 * this call's worst-case cost exceeds what is left, and how much is left — in the message and in
 * the headers (RateLimit in micro-dollars). Over HTTP, an Express app whose calls are priced per
 * request, with the figures of the report: $0.000091 left of a $0.0002 budget.
 */
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import express from 'express'
import { parseList } from 'structured-headers'
import { afterAll, describe, expect, it } from 'vitest'
import { sluice } from '../../src/http/express.js'
import { hashApiKey } from '../../src/http/index.js'
import { fixedWindow } from '../../src/index.js'
import { call } from './client.js'

const KEY = 'sk-sluice-budget-test-key-0123456789abcdefghijklmnopqrstuv'
let server: Server
afterAll(async () => {
  server?.closeAllConnections()
  await new Promise((r) => server?.close(r))
})

async function start(): Promise<string> {
  const app = express()
  app.use(
    sluice({
      logger: false,
      tiers: {
        anonymous: {
          scope: 'ip',
          limits: { budget: fixedWindow({ limit: 1, windowMs: 86_400_000, unit: 'usd' }) },
        },
        metered: {
          scope: 'key',
          limits: { budget: fixedWindow({ limit: 0.0002, windowMs: 30 * 86_400_000, unit: 'usd' }) },
        },
      },
      keys: [{ hash: hashApiKey(KEY), tier: 'metered', id: 'metered' }],
      // The call's price, as a gateway would estimate it (its worst case) before calling the model.
      cost: (req) => ({ requests: 1, usd: Number(req.headers['x-usd']) }),
    }),
  )
  app.post('/v1/chat/completions', (_req, res) => res.json({ ok: true }))
  server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s))
  })
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/chat/completions`
}

describe('dollar budget refusals', () => {
  it('$0.000091 left: a $0.0001 call is refused as too dear, not as "spent"; a smaller one passes', async () => {
    const url = await start()
    const ask = (usd: number) => call(url, { 'x-api-key': KEY, 'x-usd': String(usd) }, 'POST')
    expect((await ask(0.000109)).status).toBe(200)

    const dear = await ask(0.0001)
    expect(dear.status).toBe(429)
    expect(dear.body.error).toMatchObject({ type: 'insufficient_quota', code: 'insufficient_quota' })
    expect(dear.body.error.message).toMatch(
      /^This call's worst-case cost \(\$0\.0001\) exceeds what is left of budget "budget": \$0\.000091 of \$0\.0002 per 720h0m0s\. A smaller call may pass now; this one can pass in \d+h\d+m/,
    )
    expect(dear.body.error.message).not.toMatch(/spent/)
    const [name, params] = parseList(dear.headers.get('ratelimit')!)[0]!
    expect(name).toBe('budget')
    expect(params.get('r')).toBe(91) // micro-dollars, as RateLimit-Policy says
    expect(dear.headers.get('ratelimit-policy')).toBe('"budget";q=200;qu="usd-micros";w=2592000')
    expect(dear.headers.get('x-ratelimit-remaining')).toBe('91')
    // Days away: longer than a client should sleep inside one call.
    expect(dear.headers.get('x-should-retry')).toBe('false')

    expect((await ask(0.00009)).status).toBe(200)
    expect((await ask(0.000001)).status).toBe(200)
    const spent = await ask(0.000001)
    expect(spent.status).toBe(429)
    expect(spent.body.error.message).toMatch(
      /^Budget "budget" \(\$0\.0002 per 720h0m0s\) is spent\. It allows more in /,
    )
    expect(parseList(spent.headers.get('ratelimit')!)[0]![1].get('r')).toBe(0)
  })
})
