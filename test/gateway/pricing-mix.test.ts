import { type Dispatcher, request } from 'undici'
import { afterAll, describe, expect, it } from 'vitest'
import { summarize } from '../../src/gateway/ledger-reader.js'
import type { MockRecord } from '../../src/gateway/mock/server.js'
import { PriceTable } from '../../src/gateway/prices.js'
import { newKey, startTestGateway, type TestGateway } from './helpers.js'

const TEN_YEARS = '3650d'
const prices = new PriceTable()

/** A tier that only counts: limit − remaining is exactly what was charged. */
const meterTier = {
  scope: 'key' as const,
  limits: {
    calls: { kind: 'fixedWindow' as const, limit: 1e9, window: TEN_YEARS },
    tokens: { kind: 'fixedWindow' as const, unit: 'tokens', limit: 1e12, window: TEN_YEARS },
    usd: { kind: 'fixedWindow' as const, unit: 'usd', limit: 1e6, window: TEN_YEARS },
    cached: { kind: 'fixedWindow' as const, unit: 'cached_tokens', limit: 1e12, window: TEN_YEARS },
    input: { kind: 'fixedWindow' as const, unit: 'input_tokens', limit: 1e12, window: TEN_YEARS },
  },
  block: false as const,
}

type Call = { path: string; body: Record<string, unknown>; fail?: string; abortAfter?: number }

/** A long system prompt marked for caching: the first call with it writes the cache, the others read. */
function cachedSystem(i: number) {
  return [
    { type: 'text', text: `You are assistant ${i % 3}. ${'Rivers carry water to the sea. '.repeat(40)}` },
    {
      type: 'text',
      text: 'Answer briefly.',
      cache_control: i % 3 === 0 ? { type: 'ephemeral', ttl: '1h' } : { type: 'ephemeral' },
    },
  ]
}

/** Half OpenAI, half Anthropic: plain, streamed, cached, aborted, and upstream failures in both. */
function mix(i: number): Call {
  const question = `Question ${i}: ${'why '.repeat(i % 5)}does water flow?`
  if (i % 2 === 0) {
    const chat = (extra: Record<string, unknown> = {}) => ({
      model: i % 4 ? 'gpt-4o-mini' : 'gpt-4.1',
      messages: [{ role: 'user', content: question }],
      ...extra,
    })
    switch ((i / 2) % 8) {
      case 0:
        return { path: '/v1/chat/completions', body: chat({ max_tokens: 20 }) }
      case 1:
        return { path: '/v1/chat/completions', body: chat({ stream: true }) }
      case 2:
        return { path: '/v1/chat/completions', body: chat({ stream: true }), fail: 'stall:2', abortAfter: 2 }
      case 3:
        return { path: '/v1/chat/completions', body: chat(), fail: '500' }
      case 4:
        return { path: '/v1/chat/completions', body: chat({ stream: true }), fail: 'cut:3' }
      case 5:
        return { path: '/v1/responses', body: { model: 'gpt-4o-mini', input: question, stream: true } }
      default:
        return { path: '/v1/chat/completions', body: chat({ max_tokens: 5 }) }
    }
  }
  const message = (extra: Record<string, unknown> = {}) => ({
    model: i % 3 ? 'claude-sonnet-4-6' : 'claude-haiku-4-5',
    max_tokens: 40 + (i % 30),
    messages: [{ role: 'user', content: question }],
    ...extra,
  })
  switch (((i - 1) / 2) % 11) {
    case 0:
      return { path: '/v1/messages', body: message() }
    case 1:
      return { path: '/v1/messages', body: message({ stream: true }) }
    case 2:
    case 3:
      return { path: '/v1/messages', body: message({ system: cachedSystem(i) }) }
    case 4:
      return { path: '/v1/messages', body: message({ system: cachedSystem(i), stream: true }) }
    case 5:
      // The client leaves after a few tokens (the model "thinks" silently after them).
      return {
        path: '/v1/messages',
        body: message({ system: cachedSystem(i), stream: true }),
        fail: 'stall:2',
        abortAfter: 2,
      }
    case 6:
      return { path: '/v1/messages', body: message({ stream: i % 4 === 1 }), fail: '500' }
    case 9:
      // Overloaded: a 529, or on a stream an error event after message_start.
      return {
        path: '/v1/messages',
        body: message({ system: cachedSystem(i), stream: i % 4 === 1 }),
        fail: 'overloaded',
      }
    case 7:
      // The upstream drops the connection mid-stream, after the prompt's usage went out.
      return { path: '/v1/messages', body: message({ system: cachedSystem(i), stream: true }), fail: 'cut:3' }
    case 8:
      return { path: '/v1/messages', body: message({ stream: true }), fail: 'timeout' }
    default:
      return { path: '/v1/messages', body: message({ system: 'Be brief.', max_tokens: 3 }) }
  }
}

/** Reads an SSE body until `tokens` text deltas arrived (either dialect), then aborts the request. */
async function readThenAbort(res: Dispatcher.ResponseData, tokens: number, controller: AbortController) {
  let seen = 0
  let buffer = ''
  res.body.on('error', () => {})
  for await (const chunk of res.body) {
    buffer += chunk.toString()
    let end = buffer.indexOf('\n\n')
    while (end !== -1) {
      const event = buffer.slice(0, end)
      buffer = buffer.slice(end + 2)
      if (/"(content|text)":"[^"]+"/.test(event) && !event.includes('message_start')) seen++
      end = buffer.indexOf('\n\n')
    }
    if (seen >= tokens) break
  }
  controller.abort()
}

async function send(gw: TestGateway, key: string, call: Call): Promise<number> {
  const controller = new AbortController()
  const anthropic = call.path.startsWith('/v1/messages')
  const headers: Record<string, string> = anthropic
    ? { 'x-api-key': key, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' }
    : { authorization: `Bearer ${key}`, 'content-type': 'application/json' }
  if (call.fail) headers['x-mock-fail'] = call.fail
  try {
    const res = await request(`${gw.url}${call.path}`, {
      method: 'POST',
      headers,
      body: JSON.stringify(call.body),
      signal: controller.signal,
    })
    if (call.abortAfter !== undefined) {
      await readThenAbort(res, call.abortAfter, controller)
      return res.statusCode
    }
    await res.body.text()
    return res.statusCode
  } catch {
    return -1 // the gateway dropped the connection because the upstream did (cut streams)
  }
}

/** What each call should cost by the mock's own records, priced by the table. */
function expected(records: MockRecord[]) {
  let tokens = 0
  let usd = 0
  let cached = 0
  let input = 0
  for (const r of records) {
    tokens += r.promptTokens + r.completionTokens
    cached += r.cachedTokens ?? 0
    input += r.promptTokens - (r.cachedTokens ?? 0)
    usd += prices.breakdown(r.model, {
      promptTokens: r.promptTokens,
      completionTokens: r.completionTokens,
      cachedTokens: r.cachedTokens,
      cacheWriteTokens: r.cacheWriteTokens,
      cacheWrite1hTokens: r.cacheWrite1hTokens,
    }).usd
  }
  return { tokens, usd, cached, input }
}

describe('prices per token kind, both dialects', () => {
  let gw: TestGateway | undefined
  afterAll(() => gw?.close())

  it('200 mixed calls: tokens and USD charged = the upstream usage priced by the table = the ledger replayed', async () => {
    const { key, entry } = newKey('meter', 'meter-1')
    gw = await startTestGateway('memory', {
      tiers: { meter: meterTier },
      auth: { keys: [entry] },
      upstreams: { mock: { type: 'mock', headersTimeout: '5s' } },
    })
    const calls = 200
    let next = 0
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < calls) {
          const i = next++
          await send(gw!, key, mix(i))
        }
      }),
    )
    await gw.settled()
    const records = await gw.ledgerRecords()
    const mock = gw.mock!.records
    expect(records).toHaveLength(calls)
    expect(mock).toHaveLength(calls)
    // The mix really exercised every path, in both dialects, with cache reads and both kinds of write.
    expect(new Set(records.map((r) => r.route))).toEqual(new Set(['chat', 'responses', 'messages']))
    expect(new Set(mock.map((m) => m.outcome))).toEqual(new Set(['ok', 'stalled', 'error', 'cut', 'timeout']))
    expect(new Set(records.map((r) => r.outcome))).toEqual(
      new Set(['ok', 'aborted', 'upstream_error', 'cut']),
    )
    // An overloaded stream (an error event after message_start) is an upstream error, charged its prompt.
    const overloaded = records.filter(
      (r) => r.route === 'messages' && r.stream && r.status === 200 && r.outcome === 'upstream_error',
    )
    expect(overloaded.length).toBeGreaterThan(0)
    for (const r of overloaded) expect(r).toMatchObject({ source: 'upstream', completionTokens: 0 })
    expect(mock.some((m) => (m.cachedTokens ?? 0) > 0)).toBe(true)
    expect(mock.some((m) => (m.cacheWriteTokens ?? 0) > 0)).toBe(true)
    expect(mock.some((m) => (m.cacheWrite1hTokens ?? 0) > 0)).toBe(true)

    const truth = expected(mock)
    const ledgerTokens = records.reduce((s, r) => s + r.tokens, 0)
    const ledgerUsd = records.reduce((s, r) => s + r.usd, 0)
    expect(ledgerTokens).toBe(truth.tokens)
    expect(ledgerUsd).toBeCloseTo(truth.usd, 9)
    expect(records.reduce((s, r) => s + (r.cachedTokens ?? 0), 0)).toBe(truth.cached)
    // Each row's kinds add up to its total.
    for (const r of records) {
      expect(r.inputUsd! + r.cachedUsd! + r.cacheWriteUsd! + r.outputUsd!).toBeCloseTo(r.usd, 12)
    }
    // The store was charged the same, per kind too.
    expect(await gw.used('meter', 'key:meter-1', 'tokens')).toBe(truth.tokens)
    expect(await gw.used('meter', 'key:meter-1', 'cached')).toBe(truth.cached)
    // A limit on input tokens is not eaten by cache reads.
    expect(await gw.used('meter', 'key:meter-1', 'input')).toBe(truth.input)
    expect(truth.input).toBeLessThan(truth.tokens - truth.cached + 1)
    const storeUsd = await gw.used('meter', 'key:meter-1', 'usd')
    expect(Math.abs(storeUsd - ledgerUsd)).toBeLessThan(1e-5)
    // Replayed, the ledger gives the same totals.
    const replay = summarize(records, 'tier')
    expect(replay).toHaveLength(1)
    expect(replay[0]).toMatchObject({ requests: calls, tokens: truth.tokens })
    expect(replay[0]!.usd).toBeCloseTo(truth.usd, 9)
  })
})
