import Anthropic from '@anthropic-ai/sdk'
import OpenAI from 'openai'
import { afterEach, describe, expect, it } from 'vitest'
import { readHeadroom } from '../../src/gateway/deployments/headroom.js'
import { formatReset } from '../../src/gateway/mock/limits.js'
import { type MockUpstream, startMockUpstream } from '../../src/gateway/mock/server.js'

let mock: MockUpstream | undefined
afterEach(async () => {
  await mock?.close()
  mock = undefined
})

const chat = (url: string) =>
  fetch(`${url}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      model: 'gpt-4o-mini',
      max_tokens: 10,
      messages: [{ role: 'user', content: 'hi' }],
    }),
  })

describe('the mock upstream as a provider account', () => {
  it("OpenAI: x-ratelimit-* on every answer, then OpenAI's 429 once the RPM is spent", async () => {
    mock = await startMockUpstream({ rateLimits: { requests: 3, tokens: 10_000 } })
    const remaining: string[] = []
    for (let i = 0; i < 3; i++) {
      const res = await chat(mock.url)
      expect(res.status).toBe(200)
      expect(res.headers.get('x-ratelimit-limit-requests')).toBe('3')
      expect(res.headers.get('x-ratelimit-limit-tokens')).toBe('10000')
      remaining.push(res.headers.get('x-ratelimit-remaining-requests')!)
      expect(res.headers.get('x-ratelimit-reset-requests')).toMatch(/^\d+(\.\d+)?(ms|s)$/)
      await res.text()
    }
    expect(remaining).toEqual(['2', '1', '0'])
    const refused = await chat(mock.url)
    expect(refused.status).toBe(429)
    expect(refused.headers.get('x-ratelimit-remaining-requests')).toBe('0')
    const body = (await refused.json()) as { error: { code: string; type: string } }
    expect(body.error).toMatchObject({ code: 'rate_limit_exceeded', type: 'requests' })
    expect(mock.account.refusals).toBe(1)
    expect(mock.records.map((r) => r.outcome)).toEqual(['ok', 'ok', 'ok', 'rate_limited'])
    // The official client sees a RateLimitError.
    const client = new OpenAI({ baseURL: mock.url, apiKey: 'x', maxRetries: 0 })
    await expect(
      client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
    ).rejects.toBeInstanceOf(OpenAI.RateLimitError)
  })

  it('counts the prompt and the output maximum against the TPM, as providers do up front', async () => {
    mock = await startMockUpstream({ rateLimits: { tokens: 100 } })
    const big = await fetch(`${mock.url}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'gpt-4o-mini',
        max_tokens: 500,
        messages: [{ role: 'user', content: 'hi' }],
      }),
    })
    expect(big.status).toBe(429)
    expect(big.headers.get('x-ratelimit-remaining-tokens')).toBe('100')
  })

  it('Anthropic: anthropic-ratelimit-* with RFC 3339 resets, a 429 rate_limit_error with retry-after', async () => {
    mock = await startMockUpstream({ rateLimits: { requests: 1 } })
    const client = new Anthropic({ baseURL: mock.url.replace(/\/v1$/, ''), apiKey: 'x', maxRetries: 0 })
    const first = await client.messages
      .create({ model: 'claude-sonnet-4-6', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] })
      .withResponse()
    const h = first.response.headers
    expect(h.get('anthropic-ratelimit-requests-limit')).toBe('1')
    expect(h.get('anthropic-ratelimit-requests-remaining')).toBe('0')
    const reset = Date.parse(h.get('anthropic-ratelimit-requests-reset')!)
    expect(reset).toBeGreaterThan(Date.now())
    const error = await client.messages
      .create({ model: 'claude-sonnet-4-6', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] })
      .catch((e: unknown) => e)
    expect(error).toBeInstanceOf(Anthropic.RateLimitError)
    const e = error as InstanceType<typeof Anthropic.RateLimitError>
    expect(Number(e.headers?.get('retry-after'))).toBeGreaterThanOrEqual(1)
    expect((e.error as { error: { type: string } }).error.type).toBe('rate_limit_error')
  })

  it('refuse(): 429 with the retry-after it was given, to every call while it lasts', async () => {
    mock = await startMockUpstream()
    mock.account.refuse(5)
    const res = await chat(mock.url)
    expect(res.status).toBe(429)
    expect(res.headers.get('retry-after')).toBe('5')
  })

  it("the gateway reads back what the mock writes (OpenAI's durations, Anthropic's times)", () => {
    expect(formatReset(20)).toBe('20ms')
    expect(formatReset(1500)).toBe('1.5s')
    expect(formatReset(360_000)).toBe('6m0s')
    const now = Date.parse('2026-01-01T00:00:00Z')
    expect(
      readHeadroom(
        {
          'x-ratelimit-limit-requests': '60',
          'x-ratelimit-remaining-requests': '0',
          'x-ratelimit-reset-requests': '6m0s',
        },
        now,
      ),
    ).toEqual({ limitRequests: 60, remainingRequests: 0, resetRequestsMs: 360_000 })
    expect(
      readHeadroom(
        {
          'anthropic-ratelimit-tokens-limit': '1000',
          'anthropic-ratelimit-tokens-remaining': '10',
          'anthropic-ratelimit-tokens-reset': '2026-01-01T00:00:30Z',
          'retry-after': '7',
        },
        now,
      ),
    ).toEqual({ limitTokens: 1000, remainingTokens: 10, resetTokensMs: 30_000, retryAfterMs: 7000 })
  })
})
