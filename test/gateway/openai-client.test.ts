import OpenAI, { NotFoundError, RateLimitError } from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { newKey, STORE_KINDS, startTestGateway, stopRedis, type TestGateway } from './helpers.js'

afterAll(stopRedis)

describe.each(STORE_KINDS)('the official openai client through the gateway (%s store)', (kind) => {
  let gw: TestGateway
  let client: OpenAI
  let direct: OpenAI
  const roomy = newKey('roomy', 'roomy-1')
  const tight = newKey('tight', 'tight-1')
  const retrying = newKey('tight', 'tight-2')

  beforeAll(async () => {
    gw = await startTestGateway(kind, {
      tiers: {
        roomy: {
          scope: 'key',
          limits: { tokens: { kind: 'tokenBucket', unit: 'tokens', capacity: 1_000_000, per: '1h' } },
        },
        // Two requests at once, one more every second: short enough for the SDK's retry to wait out.
        tight: {
          scope: 'key',
          limits: { burst: { kind: 'tokenBucket', capacity: 2, refillPerSecond: 1 } },
          block: false,
        },
      },
      auth: { keys: [roomy.entry, tight.entry, retrying.entry] },
    })
    client = new OpenAI({ apiKey: roomy.key, baseURL: `${gw.url}/v1`, maxRetries: 0 })
    direct = new OpenAI({ apiKey: 'unused', baseURL: gw.mock!.url, maxRetries: 0 })
  })
  afterAll(() => gw?.close())

  const messages = [{ role: 'user' as const, content: 'Tell me about rivers and gates.' }]

  it('passes a chat completion through unchanged, with rate-limit headers', async () => {
    const { data, response } = await client.chat.completions
      .create({ model: 'gpt-4o-mini', messages, max_tokens: 40 })
      .withResponse()
    const straight = await direct.chat.completions.create({ model: 'gpt-4o-mini', messages, max_tokens: 40 })
    expect(data).toEqual(straight)
    expect(data.choices[0]!.message.content!.length).toBeGreaterThan(0)
    expect(data.usage!.completion_tokens).toBeLessThanOrEqual(40)
    expect(response.headers.get('x-ratelimit-limit-tokens')).toBe('1000000')
    expect(Number(response.headers.get('x-ratelimit-remaining-tokens'))).toBeLessThan(1_000_000)
    expect(response.headers.get('ratelimit-policy')).toContain('"tokens";q=1000000')
  })

  it('streams chunk by chunk; the usage chunk the gateway asked for is hidden again', async () => {
    const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true })
    let text = ''
    let chunks = 0
    for await (const chunk of stream) {
      chunks++
      expect(chunk).not.toHaveProperty('usage')
      expect(chunk.choices).toHaveLength(1)
      text += chunk.choices[0]!.delta.content ?? ''
    }
    const whole = await direct.chat.completions.create({ model: 'gpt-4o-mini', messages })
    expect(text).toBe(whole.choices[0]!.message.content)
    expect(chunks).toBeGreaterThan(3)
    await gw.settled()
    const records = await gw.ledgerRecords()
    const last = records.at(-1)!
    expect(last).toMatchObject({
      stream: true,
      source: 'upstream',
      completionTokens: whole.usage!.completion_tokens,
    })
  })

  it('keeps the usage chunk when the client asked for it', async () => {
    const stream = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages,
      stream: true,
      stream_options: { include_usage: true },
    })
    let usage: OpenAI.CompletionUsage | null | undefined
    for await (const chunk of stream) if (chunk.usage) usage = chunk.usage
    expect(usage?.total_tokens).toBeGreaterThan(0)
  })

  it('passes embeddings through unchanged (the SDK asks for base64 and decodes it)', async () => {
    const input = ['the first text', 'a second one']
    const viaGateway = await client.embeddings.create({ model: 'text-embedding-3-small', input })
    const straight = await direct.embeddings.create({ model: 'text-embedding-3-small', input })
    expect(viaGateway).toEqual(straight)
    expect(viaGateway.data).toHaveLength(2)
    expect(viaGateway.data[0]!.embedding).toHaveLength(256)
    expect(viaGateway.usage.prompt_tokens).toBeGreaterThan(0)
  })

  it('serves the Responses API, streamed and not', async () => {
    const response = await client.responses.create({
      model: 'gpt-4o-mini',
      input: 'Say something.',
      max_output_tokens: 30,
    })
    expect(response.output_text.length).toBeGreaterThan(0)
    const stream = await client.responses.create({
      model: 'gpt-4o-mini',
      input: 'Say something.',
      max_output_tokens: 30,
      stream: true,
    })
    let text = ''
    for await (const event of stream) if (event.type === 'response.output_text.delta') text += event.delta
    expect(text).toBe(response.output_text)
  })

  it('lists models', async () => {
    const models = await client.models.list()
    expect(models.data.map((m) => m.id)).toContain('gpt-4o-mini')
  })

  it('retrieves one model with models.retrieve, and an unknown one is a NotFoundError', async () => {
    const model = await client.models.retrieve('gpt-4o-mini')
    expect(model).toMatchObject({ id: 'gpt-4o-mini', object: 'model' })
    const error = await client.models.retrieve('no-such-model').then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(NotFoundError)
  })

  it('gives RateLimitError with the rate-limit headers once the limit is spent', async () => {
    const limited = new OpenAI({ apiKey: tight.key, baseURL: `${gw.url}/v1`, maxRetries: 0 })
    await limited.chat.completions.create({ model: 'gpt-4o-mini', messages, max_tokens: 5 })
    await limited.chat.completions.create({ model: 'gpt-4o-mini', messages, max_tokens: 5 })
    const error = await limited.chat.completions
      .create({ model: 'gpt-4o-mini', messages, max_tokens: 5 })
      .then(
        () => undefined,
        (e: unknown) => e,
      )
    expect(error).toBeInstanceOf(RateLimitError)
    const e = error as RateLimitError
    expect(e.status).toBe(429)
    expect(e.error).toMatchObject({ type: 'requests', code: 'rate_limit_exceeded', param: null })
    expect(Number(e.headers?.get('retry-after'))).toBeGreaterThanOrEqual(1)
    expect(Number(e.headers?.get('retry-after-ms'))).toBeGreaterThan(0)
    expect(e.headers?.get('x-ratelimit-remaining-requests')).toBe('0')
    expect(e.headers?.get('ratelimit')).toMatch(/^"burst";r=0;t=\d+$/)
  })

  it("lets the SDK's own retry wait as told and then succeed", async () => {
    const patient = new OpenAI({ apiKey: retrying.key, baseURL: `${gw.url}/v1`, maxRetries: 4 })
    let throttled = 0
    const onThrottle = () => throttled++
    gw.sluice.events.on('throttle', onThrottle)
    try {
      for (let i = 0; i < 4; i++) {
        const answer = await patient.chat.completions.create({
          model: 'gpt-4o-mini',
          messages,
          max_tokens: 5,
        })
        expect(answer.choices[0]!.message.content).toBeTruthy()
      }
    } finally {
      gw.sluice.events.off('throttle', onThrottle)
    }
    // Four calls on a bucket of two: at least one was refused and retried after the advertised wait.
    expect(throttled).toBeGreaterThanOrEqual(1)
  })
})
