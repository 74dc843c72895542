import { createServer, type Server } from 'node:http'
import OpenAI from 'openai'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  STORE_KINDS,
  startGatewayInFrontOf,
  startTestGateway,
  stopRedis,
  type TestGateway,
} from './helpers.js'

afterAll(stopRedis)

const chat = (extra: Record<string, unknown> = {}) =>
  JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hello' }], ...extra })

describe.each(STORE_KINDS)('a non-streamed answer cut halfway (%s store)', (kind) => {
  let gw: TestGateway
  beforeAll(async () => {
    gw = await startTestGateway(kind)
  })
  afterAll(() => gw?.close())

  it('is a 502 with an OpenAI-shaped body, recorded as 502 in the ledger', async () => {
    const res = await request(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${gw.demoKey}`, 'x-mock-fail': 'cut:1' },
      body: chat(),
    })
    expect(res.statusCode).toBe(502)
    expect(res.headers['content-type']).toMatch(/^application\/json/)
    expect(res.headers['x-ratelimit-limit-requests']).toBeDefined()
    const body = (await res.body.json()) as { error: Record<string, unknown> }
    expect(Object.keys(body.error).sort()).toEqual(['code', 'message', 'param', 'type'])
    expect(body.error).toMatchObject({ type: 'upstream_error', code: 'upstream_cut', param: null })
    await gw.settled()
    const records = await gw.ledgerRecords()
    expect(records).toHaveLength(1)
    expect(records[0]).toMatchObject({ status: 502, outcome: 'cut', completionTokens: 0 })
  })

  it('reaches the OpenAI SDK as an APIError with status 502', async () => {
    const client = new OpenAI({
      baseURL: `${gw.url}/v1`,
      apiKey: gw.demoKey!,
      maxRetries: 0,
      defaultHeaders: { 'x-mock-fail': 'cut:1' },
    })
    const error = await client.chat.completions
      .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hello' }] })
      .catch((e: unknown) => e)
    expect(error).toBeInstanceOf(OpenAI.APIError)
    expect((error as InstanceType<typeof OpenAI.APIError>).status).toBe(502)
  })
})

describe('headers naming the operator account', () => {
  let upstream: Server
  let gw: TestGateway
  const ACCOUNT_HEADERS = {
    'openai-organization': 'org-operator-1234',
    'openai-project': 'proj_operator_5678',
    'anthropic-organization-id': '0b7c-operator',
    'anthropic-ratelimit-tokens-remaining': '999000',
    'x-ms-deployment-name': 'operator-gpt4o-eastus',
  }
  /** The upstream's limits, under names the gateway uses for its own. */
  const LIMIT_HEADERS = { 'x-ratelimit-remaining-requests': '9999', ratelimit: '"default";r=10;t=1' }
  const CALL_HEADERS = {
    'x-request-id': 'req_abc123',
    'openai-processing-ms': '42',
    'openai-version': '2020-10-01',
  }

  beforeAll(async () => {
    upstream = createServer((req, res) => {
      let text = ''
      req.on('data', (c) => {
        text += c
      })
      req.on('end', () => {
        const body = JSON.parse(text) as { stream?: boolean }
        const headers = { ...ACCOUNT_HEADERS, ...LIMIT_HEADERS, ...CALL_HEADERS }
        if (body.stream) {
          res.writeHead(200, { 'content-type': 'text/event-stream', ...headers })
          const chunk = { id: 'c', object: 'chat.completion.chunk', model: 'gpt-4o-mini' }
          res.write(
            `data: ${JSON.stringify({ ...chunk, choices: [{ index: 0, delta: { content: 'Hi' } }] })}\n\n`,
          )
          res.write(
            `data: ${JSON.stringify({ ...chunk, choices: [], usage: { prompt_tokens: 8, completion_tokens: 1, total_tokens: 9 } })}\n\n`,
          )
          res.end('data: [DONE]\n\n')
          return
        }
        res.writeHead(200, { 'content-type': 'application/json', ...headers })
        res.end(
          JSON.stringify({
            id: 'c',
            object: 'chat.completion',
            model: 'gpt-4o-mini',
            choices: [{ index: 0, message: { role: 'assistant', content: 'Hi' }, finish_reason: 'stop' }],
            usage: { prompt_tokens: 8, completion_tokens: 1, total_tokens: 9 },
          }),
        )
      })
    })
    gw = await startGatewayInFrontOf(upstream)
  })
  afterAll(async () => {
    await gw?.close()
    upstream?.close()
  })

  it.each([false, true])('never reach the client (stream: %s); the call’s own ids do', async (stream) => {
    const res = await request(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${gw.demoKey}` },
      body: chat({ stream }),
    })
    expect(res.statusCode).toBe(200)
    await res.body.text()
    for (const name of Object.keys(ACCOUNT_HEADERS)) expect(res.headers[name], name).toBeUndefined()
    for (const [name, value] of Object.entries(CALL_HEADERS)) expect(res.headers[name], name).toBe(value)
    // The gateway's own limits are what the rate-limit headers say.
    for (const [name, value] of Object.entries(LIMIT_HEADERS)) {
      expect(res.headers[name], name).toBeDefined()
      expect(res.headers[name], name).not.toBe(value)
    }
  })
})
