/**
 * A short fuzz run over the gateway's request path, through the real server: arbitrary JSON (and
 * not JSON), near-valid requests with hostile field values, deep nesting and odd headers, on every
 * route. Whatever comes in: never a 5xx, never a hang, and a request is charged (one request, one
 * ledger line) exactly when it reached the upstream, so a refusal charges nothing.
 */
import fc from 'fast-check'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { newKey, startTestGateway, type TestGateway } from './helpers.js'

const ROUTES = ['/v1/chat/completions', '/v1/completions', '/v1/embeddings', '/v1/responses']
const PRINTABLE = Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i))
const printable = (maxLength = 40) => fc.string({ unit: fc.constantFrom(...PRINTABLE), maxLength })

/** Mostly a value that is valid for the field, sometimes one of any JSON type. */
const either = <T>(valid: fc.Arbitrary<T>) =>
  fc.oneof({ weight: 15, arbitrary: valid }, { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) })

const message = fc.record(
  {
    role: either(fc.constantFrom('system', 'user', 'assistant', 'tool')),
    content: either(
      fc.oneof(
        fc.string(),
        fc.array(
          fc.oneof(
            fc.record({ type: fc.constant('text'), text: either(fc.string()) }),
            fc.record({
              type: fc.constant('image_url'),
              image_url: either(fc.record({ url: fc.string(), detail: fc.constantFrom('low', 'high') })),
            }),
          ),
          { maxLength: 3 },
        ),
      ),
    ),
    name: either(fc.string({ maxLength: 10 })),
    tool_calls: fc.jsonValue({ maxDepth: 4 }),
  },
  { requiredKeys: ['role'] },
)

/** Requests that look like what a client sends, with any field possibly wrong. */
const nearValid = fc
  .record(
    {
      model: either(
        fc.constantFrom('gpt-4o-mini', 'gpt-4', 'text-embedding-3-small', 'llama3', '*', 'a/b:c'),
      ),
      messages: either(fc.array(message, { minLength: 1, maxLength: 4 })),
      prompt: either(
        fc.oneof(fc.string(), fc.array(fc.string(), { maxLength: 3 }), fc.array(fc.nat(), { maxLength: 5 })),
      ),
      input: either(fc.oneof(fc.string(), fc.array(fc.string(), { maxLength: 3 }))),
      instructions: either(fc.string()),
      max_tokens: either(
        fc.oneof(
          { weight: 8, arbitrary: fc.integer({ min: 1, max: 300 }) },
          {
            weight: 1,
            arbitrary: fc.oneof(fc.integer({ min: -5, max: 0 }), fc.double(), fc.constant(2 ** 40)),
          },
        ),
      ),
      max_completion_tokens: either(fc.integer({ min: -5, max: 300 })),
      max_output_tokens: either(fc.integer({ min: -5, max: 300 })),
      n: either(
        fc.oneof({ weight: 4, arbitrary: fc.integer({ min: 1, max: 3 }) }, fc.integer({ min: -2, max: 130 })),
      ),
      best_of: either(
        fc.oneof({ weight: 4, arbitrary: fc.integer({ min: 1, max: 3 }) }, fc.integer({ min: -2, max: 25 })),
      ),
      stream: either(
        fc.oneof({ weight: 3, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
      ),
      stream_options: either(fc.record({ include_usage: either(fc.boolean()) })),
      tools: fc.jsonValue({ maxDepth: 6 }),
      dimensions: either(fc.integer({ min: -1, max: 4096 })),
    },
    { requiredKeys: ['model', 'messages', 'prompt', 'input'] },
  )
  .map((body) => JSON.stringify(body))

const deep = fc
  .tuple(fc.integer({ min: 1, max: 20_000 }), fc.constantFrom('[', '{"a":'))
  .map(([levels, open]) => {
    const inner = `${open.repeat(levels)}1${(open === '[' ? ']' : '}').repeat(levels)}`
    return `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"tools":${inner}}`
  })

const body = fc.oneof(
  { weight: 4, arbitrary: nearValid },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 5 }).map((v) => JSON.stringify(v) ?? '') },
  { weight: 1, arbitrary: fc.string({ maxLength: 200 }) },
  { weight: 1, arbitrary: deep },
)

describe('fuzzing the request path', () => {
  let gw: TestGateway
  const { key, entry } = newKey('fuzz', 'fuzz')

  beforeAll(async () => {
    gw = await startTestGateway('memory', {
      tiers: {
        fuzz: {
          scope: 'key',
          limits: {
            hourly: { kind: 'slidingWindow', limit: 1_000_000, window: '1h' },
            tokens: { kind: 'tokenBucket', unit: 'tokens', capacity: 1_000_000_000, per: '1h' },
          },
        },
      },
      auth: { keys: [entry] },
      upstreams: { mock: { type: 'mock', completionTokens: { min: 1, max: 8 } } },
    })
  })
  afterAll(() => gw?.close())

  const headers = fc.record(
    {
      authorization: fc.oneof(
        { weight: 8, arbitrary: fc.constant(`Bearer ${key}`) },
        { weight: 1, arbitrary: printable().map((v) => `Bearer ${v}`) },
        { weight: 1, arbitrary: printable() },
      ),
      'x-api-key': fc.oneof(
        { weight: 4, arbitrary: fc.constant(key) },
        { weight: 1, arbitrary: printable() },
      ),
      'content-type': fc.oneof(
        { weight: 6, arbitrary: fc.constant('application/json') },
        { weight: 2, arbitrary: fc.constantFrom('text/plain', 'application/x-www-form-urlencoded') },
        { weight: 1, arbitrary: printable() },
      ),
      'x-user-id': printable(),
      'x-forwarded-for': printable(),
    },
    { requiredKeys: ['authorization', 'content-type'] },
  )

  async function charged(): Promise<number> {
    return (
      (await gw.used('fuzz', 'key:fuzz', 'hourly')) + (await gw.used('anonymous', 'ip:127.0.0.1', 'hourly'))
    )
  }

  it('never answers 5xx, never hangs, and charges exactly the calls that reached the upstream', async () => {
    let calls = 0
    let ledger = 0
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...ROUTES), body, headers, async (route, payload, sent) => {
        const before = { mock: gw.mock!.records.length, charged: await charged() }
        const res = await request(`${gw.url}${route}`, {
          method: 'POST',
          headers: sent,
          body: payload,
          headersTimeout: 10_000,
          bodyTimeout: 10_000,
        })
        const text = await res.body.text()
        expect(res.statusCode, text).toBeLessThan(500)
        if (res.statusCode >= 400 && !/^text\/event-stream/.test(String(res.headers['content-type']))) {
          expect(Object.keys(JSON.parse(text) as object)).toEqual(['error'])
        }
        await gw.settled()
        const reached = gw.mock!.records.length - before.mock
        expect(await charged(), `${res.statusCode} ${text.slice(0, 200)}`).toBe(before.charged + reached)
        calls += reached
        ledger = (await gw.ledgerRecords()).length
        expect(ledger).toBe(calls)
      }),
      { numRuns: 300 },
    )
  })
})
