import { once } from 'node:events'
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import Anthropic from '@anthropic-ai/sdk'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { newKey, startTestGateway, type TestGateway } from './helpers.js'

/** A stand-in for api.anthropic.com: answers every message the same, and keeps each request's headers. */
async function startStub(): Promise<{ url: string; seen: IncomingHttpHeaders[]; server: Server }> {
  const seen: IncomingHttpHeaders[] = []
  const usage = {
    input_tokens: 120,
    cache_creation_input_tokens: 2000,
    cache_read_input_tokens: 0,
    cache_creation: { ephemeral_5m_input_tokens: 1500, ephemeral_1h_input_tokens: 500 },
    output_tokens: 42,
  }
  const message = {
    id: 'msg_stub',
    type: 'message',
    role: 'assistant',
    model: 'claude-sonnet-4-6',
    content: [{ type: 'text', text: 'Gates hold rivers.' }],
    stop_reason: 'end_turn',
    stop_sequence: null,
    usage,
  }
  const server = createServer((req, res) => {
    seen.push(req.headers)
    req.resume()
    req.on('end', () => {
      res.writeHead(200, {
        'content-type': 'application/json',
        'request-id': 'req_stub',
        'anthropic-organization-id': 'org-operator',
        'anthropic-ratelimit-requests-limit': '4000',
      })
      res.end(JSON.stringify(message))
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`, seen, server }
}

describe('an anthropic upstream', () => {
  let gw: TestGateway
  let stub: Awaited<ReturnType<typeof startStub>>
  const dev = newKey('team', 'dev-1')

  beforeAll(async () => {
    stub = await startStub()
    gw = await startTestGateway(
      'memory',
      {
        upstreams: { claude: { type: 'anthropic', baseUrl: stub.url, apiKeyEnv: 'TEST_ANTHROPIC_KEY' } },
        models: { 'claude-*': { upstream: 'claude' } },
        tiers: {
          team: {
            scope: 'key',
            limits: { tokens: { kind: 'tokenBucket', unit: 'tokens', capacity: 1_000_000, per: '1h' } },
          },
        },
        auth: { keys: [dev.entry] },
      },
      { TEST_ANTHROPIC_KEY: 'sk-ant-operator-key' },
    )
  })
  afterAll(async () => {
    await gw?.close()
    stub?.server.close()
  })

  it("gets the configured key and the client's anthropic-version and -beta, never the client's key; cache writes are priced apart", async () => {
    const client = new Anthropic({ apiKey: dev.key, baseURL: gw.url, maxRetries: 0 })
    const { data, response } = await client.messages
      .create(
        {
          model: 'claude-sonnet-4-6',
          max_tokens: 100,
          messages: [{ role: 'user', content: 'Hello' }],
        },
        { headers: { 'anthropic-version': '2099-01-01', 'anthropic-beta': 'prompt-caching-2024-07-31' } },
      )
      .withResponse()
    expect(data.content[0]).toEqual({ type: 'text', text: 'Gates hold rivers.' })
    const headers = stub.seen.at(-1)!
    expect(headers['x-api-key']).toBe('sk-ant-operator-key')
    expect(headers['anthropic-version']).toBe('2099-01-01')
    expect(headers['anthropic-beta']).toBe('prompt-caching-2024-07-31')
    expect(headers.authorization).toBeUndefined()
    expect(JSON.stringify(headers)).not.toContain(dev.key)
    // The operator's account stays hidden; the call's request id passes.
    expect(response.headers.get('anthropic-organization-id')).toBeNull()
    expect(response.headers.get('anthropic-ratelimit-requests-limit')).not.toBe('4000')
    expect(response.headers.get('request-id')).toBe('req_stub')

    // Cache writes are charged at their own prices, each input token once.
    await gw.settled()
    const row = (await gw.ledgerRecords()).at(-1)!
    // 120 plain + 2000 written (1500 for 5 minutes, 500 for an hour), 42 out, at claude-sonnet-4's prices.
    expect(row).toMatchObject({
      promptTokens: 2120,
      cacheWriteTokens: 1500,
      cacheWrite1hTokens: 500,
      cachedTokens: 0,
      completionTokens: 42,
      tokens: 2162,
      source: 'upstream',
    })
    expect(row.inputUsd).toBeCloseTo((120 * 3) / 1e6, 12)
    expect(row.cacheWriteUsd).toBeCloseTo((1500 * 3.75 + 500 * 6) / 1e6, 12)
    expect(row.outputUsd).toBeCloseTo((42 * 15) / 1e6, 12)
    expect(row.usd).toBeCloseTo((120 * 3 + 1500 * 3.75 + 500 * 6 + 42 * 15) / 1e6, 12)
  })
})
