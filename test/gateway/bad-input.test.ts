import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { newKey, STORE_KINDS, startTestGateway, stopRedis, type TestGateway } from './helpers.js'

afterAll(stopRedis)

describe.each(STORE_KINDS)('bad input gets an OpenAI-shaped 4xx and charges nothing (%s store)', (kind) => {
  let gw: TestGateway
  const { key, entry } = newKey('metered', 'bad-input')

  beforeAll(async () => {
    gw = await startTestGateway(kind, {
      tiers: {
        metered: {
          scope: 'key',
          limits: {
            hourly: { kind: 'slidingWindow', limit: 100, window: '1h' },
            tokens: { kind: 'slidingWindow', unit: 'tokens', limit: 100_000, window: '1h' },
          },
        },
      },
      auth: { keys: [entry] },
    })
  })
  afterAll(() => gw?.close())

  async function post(path: string, body: string | Buffer, contentType = 'application/json') {
    const res = await request(`${gw.url}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': contentType },
      body,
    })
    const text = await res.body.text()
    return {
      status: res.statusCode,
      headers: res.headers,
      body: JSON.parse(text) as { error: Record<string, unknown> },
    }
  }

  function expectOpenAIError(body: { error: Record<string, unknown> }, param: string | null) {
    expect(Object.keys(body)).toEqual(['error'])
    expect(Object.keys(body.error).sort()).toEqual(['code', 'message', 'param', 'type'])
    expect(typeof body.error.message).toBe('string')
    expect((body.error.message as string).length).toBeGreaterThan(10)
    expect(body.error.type).toBe('invalid_request_error')
    expect(body.error.param).toBe(param)
  }

  const chat = (fields: Record<string, unknown>) =>
    JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], ...fields })

  it('refuses each kind of bad input', async () => {
    const cases: Array<[string, () => ReturnType<typeof post>, number, string | null]> = [
      [
        'malformed JSON',
        () => post('/v1/chat/completions', '{"model": "gpt-4o-mini", "messages": ['),
        400,
        null,
      ],
      ['JSON that is not an object', () => post('/v1/chat/completions', '[1, 2, 3]'), 400, null],
      ['JSON sent as text/plain', () => post('/v1/chat/completions', '{oops', 'text/plain'), 400, null],
      ['a 20 MB body', () => post('/v1/chat/completions', Buffer.alloc(20 * 1024 * 1024, 'a')), 413, null],
      [
        'no model',
        () => post('/v1/chat/completions', JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] })),
        400,
        'model',
      ],
      ['model not a string', () => post('/v1/chat/completions', chat({ model: 42 })), 400, 'model'],
      [
        'no messages',
        () => post('/v1/chat/completions', JSON.stringify({ model: 'gpt-4o-mini' })),
        400,
        'messages',
      ],
      ['empty messages', () => post('/v1/chat/completions', chat({ messages: [] })), 400, 'messages'],
      ['max_tokens: -1', () => post('/v1/chat/completions', chat({ max_tokens: -1 })), 400, 'max_tokens'],
      ['max_tokens: 1.5', () => post('/v1/chat/completions', chat({ max_tokens: 1.5 })), 400, 'max_tokens'],
      ['n: 0', () => post('/v1/chat/completions', chat({ n: 0 })), 400, 'n'],
      ['stream: "yes"', () => post('/v1/chat/completions', chat({ stream: 'yes' })), 400, 'stream'],
      [
        'embeddings without input',
        () => post('/v1/embeddings', JSON.stringify({ model: 'text-embedding-3-small' })),
        400,
        'input',
      ],
      [
        'completions with a bad prompt',
        () => post('/v1/completions', JSON.stringify({ model: 'x', prompt: { a: 1 } })),
        400,
        'prompt',
      ],
      [
        'responses with max_output_tokens: 0',
        () => post('/v1/responses', JSON.stringify({ model: 'x', input: 'hi', max_output_tokens: 0 })),
        400,
        'max_output_tokens',
      ],
    ]
    for (const [what, send, status, param] of cases) {
      const res = await send()
      expect(res.status, what).toBe(status)
      expectOpenAIError(res.body, param)
      // Bad input is answered with the subject's current limits, untouched.
      expect(res.headers['x-ratelimit-remaining-requests'], what).toBe('100')
    }
    expect(gw.mock!.records).toHaveLength(0)
    await gw.settled()
    expect(await gw.ledgerRecords()).toHaveLength(0)
    expect(await gw.used('metered', 'key:bad-input', 'hourly')).toBe(0)
    expect(await gw.used('metered', 'key:bad-input', 'tokens')).toBe(0)
  })

  it('answers unknown routes and methods with a 404 in the same shape', async () => {
    for (const [method, path] of [
      ['POST', '/v1/chat/completion'],
      ['GET', '/v1/chat/completions'],
      ['POST', '/v2/anything?secret=1'],
      ['DELETE', '/v1/models'],
    ] as const) {
      const res = await request(`${gw.url}${path}`, { method, headers: { authorization: `Bearer ${key}` } })
      const body = (await res.body.json()) as { error: Record<string, unknown> }
      expect(res.statusCode, `${method} ${path}`).toBe(404)
      expect(body.error).toMatchObject({ type: 'invalid_request_error', param: null, code: 'unknown_url' })
      expect(body.error.message).not.toContain('secret')
    }
    expect(await gw.used('metered', 'key:bad-input', 'hourly')).toBe(0)
  })

  it('refuses an unknown key with 401 before reading the body', async () => {
    const res = await request(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: {
        authorization: 'Bearer sk-sluice-not-a-real-key-at-all-000000000000000',
        'content-type': 'application/json',
      },
      body: chat({}),
    })
    const body = (await res.body.json()) as { error: Record<string, unknown> }
    expect(res.statusCode).toBe(401)
    expect(body.error).toMatchObject({ code: 'invalid_api_key' })
    expect(gw.mock!.records).toHaveLength(0)
  })
})

describe('requireKey', () => {
  it('refuses requests without a key with 401 when keys are required', async () => {
    const gw = await startTestGateway('memory', { auth: { requireKey: true } })
    try {
      const res = await request(`${gw.url}/v1/chat/completions`, {
        method: 'POST',
        body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
      })
      const body = (await res.body.json()) as { error: Record<string, unknown> }
      expect(res.statusCode).toBe(401)
      expect(body.error).toMatchObject({ type: 'invalid_request_error', code: 'missing_api_key' })
      const ok = await request(`${gw.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'x-api-key': gw.demoKey! },
        body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
      })
      expect(ok.statusCode).toBe(200)
      await ok.body.dump()
    } finally {
      await gw.close()
    }
  })
})
