import { createHash } from 'node:crypto'
import { type Dispatcher, request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { LedgerRow } from '../../src/control/ledger-rows.js'
import type { UsageTotals } from '../../src/control/usage.js'
import { summarize } from '../../src/gateway/ledger-reader.js'
import type { MockRecord } from '../../src/gateway/mock/server.js'
import { PriceTable } from '../../src/gateway/prices.js'
import { postgresHarness, sqliteHarness } from '../control/harness.js'
import { newKey, startTestGateway, type TestGateway } from './helpers.js'

const TEN_YEARS = '3650d'
const TOKEN = 'test-admin-token-0123456789abcdef'
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

/** What each call should cost by the mock's own records, priced by the table, in total and per kind. */
function expected(records: MockRecord[]) {
  const t = {
    tokens: 0,
    prompt: 0,
    completion: 0,
    cached: 0,
    cacheWrite: 0,
    cacheWrite1h: 0,
    input: 0,
    usd: 0,
    inputUsd: 0,
    cachedUsd: 0,
    cacheWriteUsd: 0,
    outputUsd: 0,
  }
  for (const r of records) {
    t.tokens += r.promptTokens + r.completionTokens
    t.prompt += r.promptTokens
    t.completion += r.completionTokens
    t.cached += r.cachedTokens ?? 0
    t.cacheWrite += r.cacheWriteTokens ?? 0
    t.cacheWrite1h += r.cacheWrite1hTokens ?? 0
    t.input += r.promptTokens - (r.cachedTokens ?? 0)
    const b = prices.breakdown(r.model, {
      promptTokens: r.promptTokens,
      completionTokens: r.completionTokens,
      cachedTokens: r.cachedTokens,
      cacheWriteTokens: r.cacheWriteTokens,
      cacheWrite1hTokens: r.cacheWrite1hTokens,
    })
    t.usd += b.usd
    t.inputUsd += b.inputUsd
    t.cachedUsd += b.cachedUsd
    t.cacheWriteUsd += b.cacheWriteUsd
    t.outputUsd += b.outputUsd
  }
  return t
}

async function adminGet(gw: TestGateway, path: string): Promise<Record<string, unknown>> {
  const res = await fetch(`${gw.url}/admin/v1${path}`, { headers: { authorization: `Bearer ${TOKEN}` } })
  const body = (await res.json()) as Record<string, unknown>
  if (res.status !== 200) throw new Error(`GET ${path}: ${res.status} ${JSON.stringify(body)}`)
  return body
}

/** Every row of the database ledger, through the admin API's pages. */
async function adminLedger(gw: TestGateway): Promise<LedgerRow[]> {
  const rows: LedgerRow[] = []
  let cursor: string | undefined
  do {
    const page = await adminGet(gw, `/ledger?limit=1000${cursor ? `&cursor=${cursor}` : ''}`)
    rows.push(...(page.items as LedgerRow[]))
    cursor = page.next as string | undefined
  } while (cursor !== undefined)
  return rows
}

const DATABASES = [
  ['SQLite', sqliteHarness],
  ['PostgreSQL', postgresHarness],
] as const

describe.each(DATABASES)('prices per token kind, both dialects (database ledger on %s)', (_name, make) => {
  const harness = make()
  let gw: TestGateway | undefined
  beforeAll(() => harness.setup())
  afterAll(async () => {
    await gw?.close()
    await harness.teardown()
  })

  it('200 mixed calls: tokens and USD charged = the upstream usage priced by the table = both ledgers', async () => {
    const { key, entry } = newKey('meter', 'meter-1')
    gw = await startTestGateway('memory', {
      tiers: { meter: meterTier },
      auth: { keys: [entry] },
      upstreams: { mock: { type: 'mock', headersTimeout: '5s' } },
      database: { url: harness.url() },
      admin: { tokenHash: createHash('sha256').update(TOKEN).digest('hex') },
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

    // The database ledger holds every kind too: its totals (admin API /usage) are the upstream's usage.
    await gw.control!.control.ledger.flush()
    const report = await adminGet(gw, '/usage')
    const [total] = report.items as UsageTotals[]
    expect(total).toMatchObject({
      requests: calls,
      promptTokens: truth.prompt,
      completionTokens: truth.completion,
      cachedTokens: truth.cached,
      cacheWriteTokens: truth.cacheWrite,
      cacheWrite1hTokens: truth.cacheWrite1h,
      reasoningTokens: records.reduce((s, r) => s + (r.reasoningTokens ?? 0), 0),
      tokens: truth.tokens,
    })
    expect(total!.usd).toBeCloseTo(truth.usd, 9)
    expect(total!.usdInput).toBeCloseTo(truth.inputUsd, 9)
    expect(total!.usdCached).toBeCloseTo(truth.cachedUsd, 9)
    expect(total!.usdCacheWrite).toBeCloseTo(truth.cacheWriteUsd, 9)
    expect(total!.usdOutput).toBeCloseTo(truth.outputUsd, 9)
    // Every kind is there in earnest: cache reads, both writes, each USD part.
    for (const kind of [truth.cached, truth.cacheWrite, truth.cacheWrite1h]) expect(kind).toBeGreaterThan(0)
    for (const usd of [truth.inputUsd, truth.cachedUsd, truth.cacheWriteUsd, truth.outputUsd])
      expect(usd).toBeGreaterThan(0)
    // Row by row (admin API /ledger): one per call, and each row's USD parts add up to its total.
    const rows = await adminLedger(gw)
    expect(rows).toHaveLength(calls)
    for (const r of rows) {
      expect(r.usdInput + r.usdCached + r.usdCacheWrite + r.usdOutput).toBeCloseTo(r.usd, 12)
      expect(r.cachedTokens + r.cacheWriteTokens + r.cacheWrite1hTokens).toBeLessThanOrEqual(r.promptTokens)
    }
    // The same rows as the file ledger, kind by kind.
    const sig = (r: {
      route: string | null
      outcome: string
      promptTokens: number
      cachedTokens?: number
      cacheWriteTokens?: number
      cacheWrite1hTokens?: number
      completionTokens: number
    }) =>
      [
        r.route,
        r.outcome,
        r.promptTokens,
        r.cachedTokens ?? 0,
        r.cacheWriteTokens ?? 0,
        r.cacheWrite1hTokens ?? 0,
        r.completionTokens,
      ].join(' ')
    expect(rows.map(sig).sort()).toEqual(records.map(sig).sort())
  })
})
