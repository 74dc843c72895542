import { createServer, type Server } from 'node:http'
import { request } from 'undici'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { lowerBound, sharedCounter, upperBound } from '../../src/gateway/counting.js'
import {
  STORE_KINDS,
  startGatewayInFrontOf,
  startTestGateway,
  stopRedis,
  type TestGateway,
} from './helpers.js'

afterAll(stopRedis)

const chatBody = (content: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content }], max_tokens: 16, ...extra })

async function post(gw: TestGateway, body: string, key?: string) {
  const res = await request(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key && { authorization: `Bearer ${key}` }) },
    body,
  })
  return {
    status: res.statusCode,
    headers: res.headers,
    json: (await res.body.json()) as {
      error: { message: string }
      usage: { prompt_tokens: number }
    },
  }
}

describe('prompts of any size, against the mock upstream', () => {
  let gw: TestGateway
  beforeAll(async () => {
    gw = await startTestGateway('memory')
  })
  afterAll(() => gw?.close())
  afterEach(() => vi.restoreAllMocks())

  it('refuses a one-word prompt too large for the anonymous tier without counting it', async () => {
    const count = vi.spyOn(sharedCounter(), 'count')
    // 2 MB of one letter: at least 2,000,000 / 128 = 15,625 tokens, above the tier's 10,000.
    const res = await post(gw, chatBody('a'.repeat(2_000_000)))
    expect(res.status).toBe(429)
    expect(res.headers['x-should-retry']).toBe('false')
    expect(res.json.error.message).toMatch(/can ever allow/)
    expect(count).not.toHaveBeenCalled()
    expect(gw.mock!.records).toHaveLength(0)
    await gw.settled()
    expect(await gw.ledgerRecords()).toHaveLength(0)
    expect(await gw.used('anonymous', 'ip:127.0.0.1', 'hourly')).toBe(0)
  })

  it('answers a 10 MB one-word prompt that its tier can hold, reserving at most the tier', async () => {
    const text = 'a'.repeat(10_000_000)
    const res = await post(gw, chatBody(text), gw.demoKey)
    expect(res.status).toBe(200)
    expect(res.json.usage.prompt_tokens).toBeGreaterThanOrEqual(lowerBound({ fixed: 0, texts: [text] }))
    await gw.settled()
    const [record] = await gw.ledgerRecords()
    expect(record).toMatchObject({ subject: 'key:demo', status: 200, source: 'upstream' })
  })
})

describe('an answer without usage, counted at settle', () => {
  let upstream: Server
  let gw: TestGateway
  const answer = 'a'.repeat(1_000_000)

  beforeAll(async () => {
    // An OpenAI-compatible server that reports no usage (as some do), with one very long word.
    upstream = createServer((req, res) => {
      req.resume()
      req.on('end', () => {
        const body = JSON.stringify({
          id: 'x',
          object: 'chat.completion',
          model: 'gpt-4o-mini',
          choices: [{ index: 0, message: { role: 'assistant', content: answer }, finish_reason: 'stop' }],
        })
        res.writeHead(200, { 'content-type': 'application/json' })
        res.end(body)
      })
    })
    gw = await startGatewayInFrontOf(upstream)
  })
  afterAll(async () => {
    await gw?.close()
    upstream?.close()
  })

  it('settles a one-word answer of 1 MB within its bounds', async () => {
    const res = await post(gw, chatBody('Say a long word.'), gw.demoKey)
    expect(res.status).toBe(200)
    await gw.settled()
    const [record] = await gw.ledgerRecords()
    const parts = { fixed: 0, texts: [answer] }
    expect(record!.source).toBe('counted')
    expect(record!.completionTokens).toBeGreaterThanOrEqual(lowerBound(parts))
    expect(record!.completionTokens).toBeLessThanOrEqual(upperBound(parts))
  })
})

describe.each(STORE_KINDS)('oversized prompts count toward a block (%s store)', (kind) => {
  let gw: TestGateway
  beforeAll(async () => {
    gw = await startTestGateway(kind, {
      tiers: { anonymous: { block: { after: 3, within: '1m', durations: ['1h'] } } },
    })
  })
  afterAll(() => gw?.close())

  it('blocks the subject after `after` of them, like any denial; unblock lifts the block', async () => {
    const big = chatBody('a'.repeat(2_000_000))
    const answers = [await post(gw, big), await post(gw, big), await post(gw, big)]
    expect(answers.map((a) => a.status)).toEqual([429, 429, 429])
    expect(answers[0]!.json.error.message).toMatch(/can ever allow/)
    // The third strike started the block: that answer says so.
    expect(answers[2]!.json.error.message).toMatch(/blocked/i)
    const small = await post(gw, chatBody('hi'))
    expect(small.status).toBe(429)
    expect(small.json.error.message).toMatch(/blocked/i)
    await gw.sluice.unblock('ip:127.0.0.1')
    expect((await post(gw, chatBody('hi'))).status).toBe(200)
    expect(gw.mock!.records).toHaveLength(1)
  })
})
