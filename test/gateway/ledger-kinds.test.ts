import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import OpenAI from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { LedgerRow } from '../../src/control/ledger-rows.js'
import { PriceTable } from '../../src/gateway/prices.js'
import { sqliteHarness } from '../control/harness.js'
import { newKey, startTestGateway, type TestGateway } from './helpers.js'

const TOKEN = 'test-admin-token-0123456789abcdef'
/** What the stub upstream reports: cache reads of the prompt, reasoning of the completion. */
const USAGE = {
  prompt_tokens: 1200,
  completion_tokens: 300,
  total_tokens: 1500,
  prompt_tokens_details: { cached_tokens: 1024 },
  completion_tokens_details: { reasoning_tokens: 256 },
}

/** A stand-in for an OpenAI reasoning model: one answer, with cache and reasoning in its usage. */
async function startStub(): Promise<Server> {
  const server = createServer((req, res) => {
    req.resume()
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(
        JSON.stringify({
          id: 'chatcmpl-stub',
          object: 'chat.completion',
          created: 1,
          model: 'o4-mini',
          choices: [{ index: 0, message: { role: 'assistant', content: 'Gates.' }, finish_reason: 'stop' }],
          usage: USAGE,
        }),
      )
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return server
}

describe('the database ledger keeps each token kind and its USD (upstream usage with cache and reasoning)', () => {
  const harness = sqliteHarness()
  const key = newKey('service', 'kinds-1')
  let stub: Server
  let gw: TestGateway

  beforeAll(async () => {
    await harness.setup()
    stub = await startStub()
    gw = await startTestGateway(
      'memory',
      {
        upstreams: {
          stub: {
            type: 'openai',
            baseUrl: `http://127.0.0.1:${(stub.address() as AddressInfo).port}/v1`,
            apiKeyEnv: 'TEST_STUB_KEY',
          },
        },
        models: { 'o4-mini': { upstream: 'stub' } },
        auth: { keys: [key.entry] },
        database: { url: harness.url() },
        admin: { tokenHash: createHash('sha256').update(TOKEN).digest('hex') },
      },
      { TEST_STUB_KEY: 'sk-upstream' },
    )
  }, 30_000)
  afterAll(async () => {
    await gw?.close()
    stub?.close()
    await harness.teardown()
  })

  it('writes cached and reasoning tokens and the USD of each kind, as the file ledger does', async () => {
    const client = new OpenAI({ apiKey: key.key, baseURL: `${gw.url}/v1`, maxRetries: 0 })
    await client.chat.completions.create({
      model: 'o4-mini',
      messages: [{ role: 'user', content: 'Why gates?' }],
    })
    await gw.settled()
    await gw.control!.control.ledger.flush()
    const page = await fetch(`${gw.url}/admin/v1/ledger?limit=10`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    })
    const rows = ((await page.json()) as { items: LedgerRow[] }).items
    expect(rows).toHaveLength(1)
    const priced = new PriceTable().breakdown('o4-mini', {
      promptTokens: 1200,
      completionTokens: 300,
      cachedTokens: 1024,
    })
    expect(priced.cachedUsd).toBeGreaterThan(0)
    expect(rows[0]).toMatchObject({
      model: 'o4-mini',
      promptTokens: 1200,
      cachedTokens: 1024,
      cacheWriteTokens: 0,
      cacheWrite1hTokens: 0,
      completionTokens: 300,
      reasoningTokens: 256,
      tokens: 1500,
    })
    expect(rows[0]!.usd).toBeCloseTo(priced.usd, 12)
    expect(rows[0]!.usdInput).toBeCloseTo(priced.inputUsd, 12)
    expect(rows[0]!.usdCached).toBeCloseTo(priced.cachedUsd, 12)
    expect(rows[0]!.usdOutput).toBeCloseTo(priced.outputUsd, 12)
    // The file ledger's record says the same.
    const [record] = await gw.ledgerRecords()
    expect(record).toMatchObject({ cachedTokens: 1024, reasoningTokens: 256, usd: rows[0]!.usd })
  })
})
