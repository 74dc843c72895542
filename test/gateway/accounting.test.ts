import { type Dispatcher, request } from 'undici'
import { afterAll, describe, expect, it } from 'vitest'
import type { MockRecord } from '../../src/gateway/mock/server.js'
import { newKey, STORE_KINDS, startTestGateway, stopRedis, type TestGateway } from './helpers.js'

afterAll(stopRedis)

const TEN_YEARS = '3650d'

/** A tier that only counts: huge fixed windows, so limit − remaining is exactly what was charged. */
const meterTier = {
  scope: 'key' as const,
  limits: {
    calls: { kind: 'fixedWindow' as const, limit: 1e9, window: TEN_YEARS },
    tokens: { kind: 'fixedWindow' as const, unit: 'tokens', limit: 1e12, window: TEN_YEARS },
    usd: { kind: 'fixedWindow' as const, unit: 'usd', limit: 1e6, window: TEN_YEARS },
  },
  block: false as const,
}

type Call = { path: string; body: Record<string, unknown>; fail?: string; abortAfter?: number }

/** The 200-call mix: plain and streamed chat, client-requested usage, aborts, failures, other routes. */
function mix(i: number): Call {
  const messages = [
    { role: 'user', content: `Question number ${i}: ${'why '.repeat(i % 7)}does water flow?` },
  ]
  const chat = (extra: Record<string, unknown> = {}) => ({
    model: i % 2 ? 'gpt-4o-mini' : 'gpt-4.1',
    messages,
    ...extra,
  })
  switch (i % 20) {
    case 0:
    case 1:
    case 2:
      return { path: '/v1/chat/completions', body: chat({ max_tokens: 10 + (i % 50) }) }
    case 3:
    case 4:
    case 5:
      return { path: '/v1/chat/completions', body: chat({ stream: true }) }
    case 6:
      return {
        path: '/v1/chat/completions',
        body: chat({ stream: true, stream_options: { include_usage: true } }),
      }
    case 7:
    case 8:
      // The client walks away after a few tokens (the model "thinks" silently after them).
      return {
        path: '/v1/chat/completions',
        body: chat({ stream: true }),
        fail: `stall:${i % 5}`,
        abortAfter: i % 5,
      }
    case 9:
      return { path: '/v1/chat/completions', body: chat({ stream: i % 3 === 0 }), fail: '500' }
    case 10:
      // The upstream drops the connection mid-stream.
      return { path: '/v1/chat/completions', body: chat({ stream: true }), fail: `cut:${i % 4}` }
    case 11:
      return { path: '/v1/chat/completions', body: chat(), fail: 'cut:0' }
    case 12:
      return { path: '/v1/chat/completions', body: chat({ n: 2, max_tokens: 20 }) }
    case 13:
      return {
        path: '/v1/embeddings',
        body: { model: 'text-embedding-3-small', input: [`text ${i}`, 'more text'] },
      }
    case 14:
      return {
        path: '/v1/completions',
        body: {
          model: 'gpt-3.5-turbo-instruct',
          prompt: `Once upon a time ${i}`,
          max_tokens: 30,
          stream: i % 4 === 2,
        },
      }
    case 15:
      return { path: '/v1/responses', body: { model: 'gpt-4o-mini', input: `Hello ${i}`, stream: true } }
    case 16:
      return {
        path: '/v1/responses',
        body: {
          model: 'gpt-4o-mini',
          instructions: 'Be brief.',
          input: [{ role: 'user', content: `Hi ${i}` }],
        },
      }
    case 17:
      return {
        path: '/v1/chat/completions',
        body: chat({ stream: true }),
        fail: `stall:${1 + (i % 3)}`,
        abortAfter: 1 + (i % 3),
      }
    case 18:
      return {
        path: '/v1/chat/completions',
        body: chat({ stream: true }),
        fail: i % 40 === 18 ? 'timeout' : '500',
      }
    default:
      return { path: '/v1/chat/completions', body: chat({ stream: true, max_tokens: 3 }) }
  }
}

/** Reads an SSE body until `tokens` content deltas arrived, then aborts the request. */
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
      if (/"content":"[^"]+"/.test(event)) seen++
      end = buffer.indexOf('\n\n')
    }
    if (seen >= tokens) break
  }
  controller.abort()
}

async function send(gw: TestGateway, key: string, call: Call): Promise<number> {
  const controller = new AbortController()
  const headers: Record<string, string> = {
    authorization: `Bearer ${key}`,
    'content-type': 'application/json',
  }
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

/** What the mock says each call should have cost: everything it received and generated. */
function expectedTokens(records: MockRecord[], policy: 'chargePrompt' | 'refundAll'): number {
  let total = 0
  for (const r of records) {
    const failedBeforeOutput =
      r.outcome === 'error' || r.outcome === 'timeout' || (r.outcome === 'cut' && r.completionTokens === 0)
    if (failedBeforeOutput && policy === 'refundAll') continue
    total += r.promptTokens + r.completionTokens
  }
  return total
}

async function runMix(kind: 'memory' | 'redis', policy: 'chargePrompt' | 'refundAll', calls: number) {
  const { key, entry } = newKey('meter', 'meter-1')
  const gw = await startTestGateway(kind, {
    tiers: { meter: meterTier },
    auth: { keys: [entry] },
    accounting: { onUpstreamError: policy },
    upstreams: { mock: { type: 'mock', headersTimeout: '5s' } },
  })
  try {
    const statuses: number[] = []
    let next = 0
    // Eight clients at a time.
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < calls) {
          const i = next++
          statuses[i] = await send(gw, key, mix(i))
        }
      }),
    )
    await gw.settled()
    const records = await gw.ledgerRecords()
    const ledgerTokens = records.reduce((s, r) => s + r.tokens, 0)
    const ledgerUsd = records.reduce((s, r) => s + r.usd, 0)
    const storeTokens = await gw.used('meter', 'key:meter-1', 'tokens')
    const storeUsd = await gw.used('meter', 'key:meter-1', 'usd')
    const storeCalls = await gw.used('meter', 'key:meter-1', 'calls')
    const mockTokens = expectedTokens(gw.mock!.records, policy)
    return { gw, statuses, records, ledgerTokens, ledgerUsd, storeTokens, storeUsd, storeCalls, mockTokens }
  } finally {
    await gw.close()
  }
}

describe.each(STORE_KINDS)('token accounting (%s store)', (kind) => {
  it('200 mixed calls: tokens charged in the store = tokens the upstream generated = the ledger', async () => {
    const r = await runMix(kind, 'chargePrompt', 200)
    expect(r.records).toHaveLength(200)
    expect(r.gw.mock!.records).toHaveLength(200)
    // The mix really exercised every path.
    const outcomes = new Set(r.gw.mock!.records.map((m) => m.outcome))
    expect([...outcomes].sort()).toEqual(['cut', 'error', 'ok', 'stalled', 'timeout'])
    expect(new Set(r.records.map((x) => x.outcome))).toEqual(
      new Set(['ok', 'aborted', 'upstream_error', 'cut']),
    )
    expect(new Set(r.records.map((x) => x.source))).toEqual(new Set(['upstream', 'counted', 'estimate']))
    expect(r.statuses.filter((s) => s === 504).length).toBeGreaterThan(0)
    expect(r.statuses.filter((s) => s === 500).length).toBeGreaterThan(0)

    expect(r.mockTokens).toBeGreaterThan(5_000)
    expect(r.storeTokens).toBe(r.mockTokens)
    expect(r.ledgerTokens).toBe(r.mockTokens)
    expect(r.storeCalls).toBe(200)
    expect(r.ledgerUsd).toBeGreaterThan(0)
    expect(Math.abs(r.storeUsd - r.ledgerUsd)).toBeLessThan(1e-5)
  })

  it('refundAll: an upstream failure before any output costs nothing', async () => {
    const r = await runMix(kind, 'refundAll', 40)
    expect(r.storeTokens).toBe(r.mockTokens)
    expect(r.ledgerTokens).toBe(r.mockTokens)
    const refunded = r.records.filter((x) => x.source === 'none')
    expect(refunded.length).toBeGreaterThan(0)
    for (const x of refunded) expect(x).toMatchObject({ tokens: 0, usd: 0 })
  })
})

describe('a client that leaves mid-stream', () => {
  it('cancels the upstream call, and is charged what the upstream generated until then', async () => {
    const { key, entry } = newKey('meter', 'leaver')
    // 20 tokens a second for 400 tokens: the answer would take 20 s in full.
    const gw = await startTestGateway('memory', {
      tiers: { meter: meterTier },
      auth: { keys: [entry] },
      upstreams: { mock: { type: 'mock', tokensPerSecond: 20, completionTokens: { min: 400, max: 400 } } },
    })
    try {
      const controller = new AbortController()
      const res = await request(`${gw.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          model: 'gpt-4o-mini',
          stream: true,
          messages: [{ role: 'user', content: 'hi' }],
        }),
        signal: controller.signal,
      })
      await readThenAbort(res, 2, controller)
      await gw.settled()
      await expect.poll(() => gw.mock!.records[0]?.outcome, { timeout: 5_000 }).toBe('aborted')
      const generated = gw.mock!.records[0]!.completionTokens
      expect(generated).toBeGreaterThanOrEqual(2)
      expect(generated).toBeLessThan(400)
      const [record] = await gw.ledgerRecords()
      expect(record).toMatchObject({ outcome: 'aborted', completionTokens: generated })
    } finally {
      await gw.close()
    }
  })
})
