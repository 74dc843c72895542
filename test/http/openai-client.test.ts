/**
 * The official openai client against an Express app using sluice/express: it receives a
 * RateLimitError with sluice's headers, and its automatic retry waits at least retry-after-ms
 * (measured on the server, from the moment the 429 was sent to the moment the retry arrived).
 * When sluice says x-should-retry: false, the client does not retry at all.
 */
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import express from 'express'
import OpenAI from 'openai'
import { afterEach, describe, expect, it } from 'vitest'
import { sluice } from '../../src/http/express.js'
import type { SluiceOptions, Tier } from '../../src/http/index.js'
import { slidingWindow, tokenBucket } from '../../src/index.js'

interface Seen {
  arrivedAt: number
  finishedAt: number
  status: number
  retryAfterMs: number | undefined
}

const servers: Server[] = []
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections()
    await new Promise((r) => s.close(r))
  }
})

async function startApi(tiers: Record<string, Tier>, extra: SluiceOptions<express.Request> = {}) {
  const seen: Seen[] = []
  const app = express()
  app.use((_req, res, next) => {
    const entry: Seen = { arrivedAt: performance.now(), finishedAt: 0, status: 0, retryAfterMs: undefined }
    seen.push(entry)
    res.once('finish', () => {
      entry.finishedAt = performance.now()
      entry.status = res.statusCode
      const after = res.getHeader('retry-after-ms')
      entry.retryAfterMs = after === undefined ? undefined : Number(after)
    })
    next()
  })
  app.use(sluice({ tiers, logger: false, ...extra }))
  app.post('/v1/chat/completions', (_req, res) => {
    res.json({
      id: 'chatcmpl-1',
      object: 'chat.completion',
      created: 1,
      model: 'test',
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: 'hi', refusal: null },
          finish_reason: 'stop',
          logprobs: null,
        },
      ],
      usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
    })
  })
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s))
  })
  servers.push(server)
  const baseURL = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`
  return { seen, baseURL }
}

const ask = (client: OpenAI) =>
  client.chat.completions.create({ model: 'test', messages: [{ role: 'user', content: 'hello' }] })

describe('the official openai client', () => {
  it('gets a RateLimitError, and its retry waits at least retry-after-ms', async () => {
    // One request at a time, the next one 3 s later (room for a slow machine between the calls).
    const tiers = {
      anonymous: { scope: 'ip', limits: { burst: tokenBucket({ capacity: 1, refillPerSecond: 1 / 3 }) } },
    } as Record<string, Tier>
    const { seen, baseURL } = await startApi(tiers)

    const noRetry = new OpenAI({ baseURL, apiKey: 'unused', maxRetries: 0 })
    expect((await ask(noRetry)).choices[0]!.message.content).toBe('hi')
    const error = await ask(noRetry).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(OpenAI.RateLimitError)
    const e = error as InstanceType<typeof OpenAI.RateLimitError>
    expect(e.status).toBe(429)
    expect(e.code).toBe('rate_limit_exceeded')
    expect(e.type).toBe('requests')
    expect(Number(e.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
    expect(Number(e.headers.get('retry-after-ms'))).toBeGreaterThan(0)
    expect(e.headers.get('x-ratelimit-remaining-requests')).toBe('0')

    // The bucket is still empty: the next call is refused once, then retried by the client.
    const retrying = new OpenAI({ baseURL, apiKey: 'unused', maxRetries: 2 })
    expect((await ask(retrying)).choices[0]!.message.content).toBe('hi')
    const [, , refused, retried] = seen
    expect(seen.map((s) => s.status)).toEqual([200, 429, 429, 200])
    expect(refused!.retryAfterMs).toBeGreaterThan(0)
    // Timers may fire up to 1 ms early by the integer-millisecond clock; anything else means the
    // client did not wait as told.
    expect(retried!.arrivedAt - refused!.finishedAt).toBeGreaterThanOrEqual(refused!.retryAfterMs! - 1)
  })

  it('does not retry when told x-should-retry: false (blocked)', async () => {
    const tiers = {
      anonymous: { scope: 'ip', limits: { minute: slidingWindow({ limit: 1, windowMs: 60_000 }) } },
    } as Record<string, Tier>
    const { seen, baseURL } = await startApi(tiers, { block: { after: 1, durationsMs: [30_000] } })
    const client = new OpenAI({ baseURL, apiKey: 'unused', maxRetries: 2 })
    await ask(client)
    const error = await ask(client).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(OpenAI.RateLimitError)
    expect((error as InstanceType<typeof OpenAI.RateLimitError>).headers.get('x-should-retry')).toBe('false')
    expect(seen.map((s) => s.status)).toEqual([200, 429])
  })
})
