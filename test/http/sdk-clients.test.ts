/**
 * What the AI SDKs people use do with sluice's 429s when the wait is long (the anonymous tier
 * spent: most of an hour), against a real Express app using sluice's middleware with its defaults:
 * the official `openai` client, the Vercel AI SDK (`ai` + `@ai-sdk/openai`) and LangChain
 * (`@langchain/openai`). Each must get the 429 with the wait in its error, and none may sleep
 * through the hour. The server counts what reaches it, so a client's retries are seen, not timed.
 * The options each client needs are in docs/http.md ("AI SDKs and long waits").
 */
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createOpenAI } from '@ai-sdk/openai'
import { ChatOpenAI } from '@langchain/openai'
import { APICallError, generateText, RetryError } from 'ai'
import express from 'express'
import OpenAI, { RateLimitError } from 'openai'
import { afterEach, describe, expect, it } from 'vitest'
import { sluice } from '../../src/http/express.js'
import type { SluiceOptions } from '../../src/http/index.js'
import { fixedWindow } from '../../src/index.js'

const servers: Server[] = []
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections()
    await new Promise((r) => s.close(r))
  }
})

const COMPLETION = {
  id: 'chatcmpl-1',
  object: 'chat.completion',
  created: 1,
  model: 'gpt-4o-mini',
  choices: [
    {
      index: 0,
      message: { role: 'assistant', content: 'hi', refusal: null },
      finish_reason: 'stop',
      logprobs: null,
    },
  ],
  usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
}

/** An API behind sluice (default tiers unless told), counting every request that reaches it. */
async function startApi(options: SluiceOptions<express.Request> = {}) {
  const arrivals: number[] = []
  const app = express()
  app.use((_req, res, next) => {
    res.once('finish', () => arrivals.push(res.statusCode))
    next()
  })
  app.use(sluice({ logger: false, ...options }))
  app.post('/v1/chat/completions', (_req, res) => res.json(COMPLETION))
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s))
  })
  servers.push(server)
  const baseURL = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`
  /** Spends the anonymous tier's 20 requests of the hour; returns the number of arrivals then. */
  const exhaust = async (calls = 20) => {
    for (let i = 0; i < calls; i++) {
      const res = await fetch(`${baseURL}/chat/completions`, { method: 'POST' })
      expect(res.status).toBe(200)
      await res.arrayBuffer()
    }
    return arrivals.length
  }
  return { baseURL, arrivals, exhaust }
}

/** sluice's message: "… Please try again in 59m58.7s." */
const WAIT_IN_MESSAGE = /Please try again in \d+m\d+(\.\d+)?s\./

const prompt = 'hello'

describe('the official openai client (Node)', () => {
  it('gets x-should-retry: false for a wait over 60 s and fails at once, the wait in its message', async () => {
    const api = await startApi()
    const before = await api.exhaust()
    const client = new OpenAI({ baseURL: api.baseURL, apiKey: 'unused' }) // maxRetries: 2 by default
    const error = await client.chat.completions
      .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: prompt }] })
      .catch((e: unknown) => e)
    expect(error).toBeInstanceOf(RateLimitError)
    const e = error as RateLimitError
    expect(api.arrivals.length - before).toBe(1) // no retry
    expect(e.message).toMatch(WAIT_IN_MESSAGE)
    expect(e.headers?.get('x-should-retry')).toBe('false')
    expect(Number(e.headers?.get('retry-after'))).toBeGreaterThan(60)
  })
})

describe('the Vercel AI SDK (ai + @ai-sdk/openai)', () => {
  const modelAt = (baseURL: string) => createOpenAI({ baseURL, apiKey: 'unused' }).chat('gpt-4o-mini')

  it('ignores x-should-retry: with a wait over 60 s it retries twice after 2 s and 4 s, then fails with the wait', async () => {
    const api = await startApi()
    const before = await api.exhaust()
    const error = await generateText({ model: modelAt(api.baseURL), prompt }).catch((e: unknown) => e)
    expect(RetryError.isInstance(error)).toBe(true)
    const e = error as RetryError
    expect(e.reason).toBe('maxRetriesExceeded')
    expect(api.arrivals.length - before).toBe(3) // the call and its two retries, all 429
    const last = e.lastError as APICallError
    expect(APICallError.isInstance(last)).toBe(true)
    expect(last.statusCode).toBe(429)
    expect(last.message).toMatch(WAIT_IN_MESSAGE)
    expect(e.message).toMatch(WAIT_IN_MESSAGE)
    expect(Number(last.responseHeaders?.['retry-after'])).toBeGreaterThan(60)
  })

  it('with maxRetries: 0 fails at once, the wait in its message', async () => {
    const api = await startApi()
    const before = await api.exhaust()
    const error = await generateText({ model: modelAt(api.baseURL), prompt, maxRetries: 0 }).catch(
      (e: unknown) => e,
    )
    expect(APICallError.isInstance(error)).toBe(true)
    expect((error as APICallError).statusCode).toBe(429)
    expect((error as APICallError).message).toMatch(WAIT_IN_MESSAGE)
    expect(api.arrivals.length - before).toBe(1)
  })
})

describe('LangChain (@langchain/openai)', () => {
  const chat = (baseURL: string, extra: Partial<ConstructorParameters<typeof ChatOpenAI>[0]> = {}) =>
    new ChatOpenAI({ model: 'gpt-4o-mini', apiKey: 'unused', configuration: { baseURL }, ...extra })

  it('with maxRetries: 0 fails at once, the wait in its message', async () => {
    const api = await startApi()
    const before = await api.exhaust()
    const error = (await chat(api.baseURL, { maxRetries: 0 })
      .invoke(prompt)
      .catch((e: unknown) => e)) as Error & { status?: number; lc_error_code?: string }
    expect(error.status).toBe(429)
    expect(error.lc_error_code).toBe('MODEL_RATE_LIMIT')
    expect(error.message).toMatch(WAIT_IN_MESSAGE)
    expect(api.arrivals.length - before).toBe(1)
  })

  it('ignores Retry-After and x-should-retry: maxRetries: 1 retries once after its own backoff', async () => {
    const api = await startApi()
    const before = await api.exhaust()
    const error = (await chat(api.baseURL, { maxRetries: 1 })
      .invoke(prompt)
      .catch((e: unknown) => e)) as Error & { status?: number }
    expect(error.status).toBe(429)
    expect(api.arrivals.length - before).toBe(2)
  })

  it('with an onFailedAttempt that honours x-should-retry, fails at once whatever maxRetries', async () => {
    const api = await startApi()
    const before = await api.exhaust()
    const model = chat(api.baseURL, {
      // The recipe in docs/http.md: stop when the server says waiting will not help soon.
      onFailedAttempt: (error: { status?: number; headers?: Headers }) => {
        if (error.headers?.get?.('x-should-retry') === 'false') throw error
        if (error.status !== undefined && error.status >= 400 && error.status < 500 && error.status !== 429) {
          throw error
        }
      },
    })
    const error = (await model.invoke(prompt).catch((e: unknown) => e)) as Error & { status?: number }
    expect(error.status).toBe(429)
    expect(error.message).toMatch(WAIT_IN_MESSAGE)
    expect(api.arrivals.length - before).toBe(1)
  })

  it('a spent dollar budget (insufficient_quota) fails at once even with its default 6 retries', async () => {
    const api = await startApi({
      tiers: {
        anonymous: {
          scope: 'ip',
          limits: { budget: fixedWindow({ limit: 0.001, windowMs: 86_400_000, unit: 'usd' }) },
        },
      },
      cost: { requests: 1, usd: 0.0004 },
    })
    const before = await api.exhaust(2)
    const error = (await chat(api.baseURL)
      .invoke(prompt)
      .catch((e: unknown) => e)) as Error
    expect(error.name).toBe('InsufficientQuotaError')
    expect(error.message).toMatch(/exceeds what is left of budget "budget": \$0\.0002 of \$0\.001/)
    expect(api.arrivals.length - before).toBe(1)
  })
})
