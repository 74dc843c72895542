import Anthropic, { AuthenticationError, NotFoundError, RateLimitError } from '@anthropic-ai/sdk'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { newKey, startTestGateway, type TestGateway } from './helpers.js'

describe('the official @anthropic-ai/sdk through the gateway (mock upstream)', () => {
  let gw: TestGateway
  let client: Anthropic
  let direct: Anthropic
  const roomy = newKey('roomy', 'roomy-1')
  const tight = newKey('tight', 'tight-1')
  const retrying = newKey('tight', 'tight-2')
  const gated = newKey('gated', 'gated-1')
  const model = 'claude-sonnet-4-6'
  const messages = [{ role: 'user' as const, content: 'Tell me about rivers and gates.' }]

  beforeAll(async () => {
    gw = await startTestGateway('memory', {
      tiers: {
        roomy: {
          scope: 'key',
          limits: {
            tokens: { kind: 'tokenBucket', unit: 'tokens', capacity: 1_000_000, per: '1h' },
            input: { kind: 'tokenBucket', unit: 'input_tokens', capacity: 400_000, per: '1m' },
            output: { kind: 'tokenBucket', unit: 'output_tokens', capacity: 80_000, per: '1m' },
          },
        },
        // Two calls a window, and token kinds that only count (fixed windows: remaining is exact).
        gated: {
          scope: 'key',
          limits: {
            calls: { kind: 'fixedWindow', limit: 2, window: '3650d' },
            input: { kind: 'fixedWindow', unit: 'input_tokens', limit: 400_000, window: '3650d' },
            output: { kind: 'fixedWindow', unit: 'output_tokens', limit: 80_000, window: '3650d' },
          },
          block: false,
        },
        tight: {
          scope: 'key',
          limits: { burst: { kind: 'tokenBucket', capacity: 2, refillPerSecond: 1 } },
          block: false,
        },
      },
      auth: { keys: [roomy.entry, tight.entry, retrying.entry, gated.entry] },
    })
    // The SDK's base URL is the host: it adds /v1/messages itself (ANTHROPIC_BASE_URL works the same).
    client = new Anthropic({ apiKey: roomy.key, baseURL: gw.url, maxRetries: 0 })
    direct = new Anthropic({ apiKey: 'unused', baseURL: gw.mock!.url.replace(/\/v1$/, ''), maxRetries: 0 })
  })
  afterAll(() => gw?.close())

  it('passes messages.create through unchanged, with Anthropic and IETF rate-limit headers', async () => {
    const { data, response } = await client.messages
      .create({ model, max_tokens: 40, messages, system: 'Be brief.' })
      .withResponse()
    const straight = await direct.messages.create({ model, max_tokens: 40, messages, system: 'Be brief.' })
    expect(data).toEqual(straight)
    expect(data.content[0]!.type).toBe('text')
    expect(data.usage.output_tokens).toBeLessThanOrEqual(40)
    expect(response.headers.get('anthropic-ratelimit-tokens-limit')).toBe('1000000')
    expect(Number(response.headers.get('anthropic-ratelimit-tokens-remaining'))).toBeLessThan(1_000_000)
    expect(response.headers.get('anthropic-ratelimit-tokens-reset')).toMatch(
      /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/,
    )
    expect(response.headers.get('ratelimit-policy')).toContain('"tokens";q=1000000')
    // Limits on input and output tokens have their own headers, as Anthropic's API sends them.
    expect(response.headers.get('anthropic-ratelimit-input-tokens-limit')).toBe('400000')
    expect(Number(response.headers.get('anthropic-ratelimit-input-tokens-remaining'))).toBeLessThan(400_000)
    expect(response.headers.get('anthropic-ratelimit-output-tokens-limit')).toBe('80000')
    expect(response.headers.get('anthropic-ratelimit-output-tokens-reset')).toMatch(/Z$/)
    await gw.settled()
    const row = (await gw.ledgerRecords()).at(-1)!
    expect(row).toMatchObject({ route: 'messages', model, source: 'upstream' })
    expect(row.promptTokens).toBe(data.usage.input_tokens)
    expect(row.completionTokens).toBe(data.usage.output_tokens)
  })

  it('takes system prompts as blocks, and tools', async () => {
    const answer = await client.messages.create({
      model,
      max_tokens: 100,
      system: [{ type: 'text', text: 'You look things up.' }],
      tools: [
        {
          name: 'lookup',
          description: 'Looks a word up',
          input_schema: { type: 'object', properties: { query: { type: 'string' } } },
        },
      ],
      tool_choice: { type: 'any' },
      messages,
    })
    expect(answer.stop_reason).toBe('tool_use')
    const block = answer.content[0]!
    expect(block.type).toBe('tool_use')
    if (block.type === 'tool_use') expect(block.name).toBe('lookup')
  })

  it('streams with .stream(): every event type, and the final usage settles the call', async () => {
    const seen = new Set<string>()
    const stream = client.messages.stream({ model, max_tokens: 60, messages })
    stream.on('streamEvent', (event) => {
      seen.add(event.type)
    })
    const final = await stream.finalMessage()
    for (const type of [
      'message_start',
      'content_block_start',
      'content_block_delta',
      'content_block_stop',
      'message_delta',
      'message_stop',
    ]) {
      expect(seen).toContain(type)
    }
    expect(final.content[0]!.type).toBe('text')
    await gw.settled()
    const row = (await gw.ledgerRecords()).at(-1)!
    expect(row).toMatchObject({ route: 'messages', stream: true, source: 'upstream', outcome: 'ok' })
    expect(row.completionTokens).toBe(final.usage.output_tokens)
  })

  it('streams with stream: true', async () => {
    const stream = await client.messages.create({ model, max_tokens: 30, messages, stream: true })
    let text = ''
    let stop = false
    for await (const event of stream) {
      if (event.type === 'content_block_delta' && event.delta.type === 'text_delta') text += event.delta.text
      if (event.type === 'message_stop') stop = true
    }
    expect(text.length).toBeGreaterThan(0)
    expect(stop).toBe(true)
  })

  it('counts tokens with countTokens, charging no tokens', async () => {
    const counted = await client.messages.countTokens({ model, messages })
    expect(counted.input_tokens).toBeGreaterThan(0)
    await gw.settled()
    const row = (await gw.ledgerRecords()).at(-1)!
    expect(row).toMatchObject({ route: 'count_tokens', tokens: 0, usd: 0 })
  })

  it('answers bad input in Anthropic shape', async () => {
    const error = await client.messages
      .create({ model, messages } as unknown as Anthropic.MessageCreateParamsNonStreaming)
      .then(
        () => undefined,
        (e: unknown) => e,
      )
    expect(error).toBeInstanceOf(Anthropic.BadRequestError)
    expect((error as InstanceType<typeof Anthropic.BadRequestError>).error).toEqual({
      type: 'error',
      error: { type: 'invalid_request_error', message: 'max_tokens: Field required' },
    })
  })

  it('surfaces an unknown key as AuthenticationError', async () => {
    const stranger = new Anthropic({ apiKey: 'sk-not-a-key-of-this-gateway', baseURL: gw.url, maxRetries: 0 })
    const error = await stranger.messages.create({ model, max_tokens: 5, messages }).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(AuthenticationError)
    expect((error as AuthenticationError).error).toMatchObject({
      type: 'error',
      error: { type: 'authentication_error' },
    })
  })

  it('answers an unknown route in Anthropic shape', async () => {
    const error = await client.get('/v1/no-such-thing').then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(NotFoundError)
    expect((error as NotFoundError).error).toMatchObject({
      type: 'error',
      error: { type: 'not_found_error' },
    })
  })

  it('gives RateLimitError with retry headers once the limit is spent', async () => {
    const limited = new Anthropic({ apiKey: tight.key, baseURL: gw.url, maxRetries: 0 })
    await limited.messages.create({ model, max_tokens: 5, messages })
    await limited.messages.create({ model, max_tokens: 5, messages })
    const error = await limited.messages.create({ model, max_tokens: 5, messages }).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(RateLimitError)
    const e = error as RateLimitError
    expect(e.status).toBe(429)
    expect(e.error).toMatchObject({ type: 'error', error: { type: 'rate_limit_error' } })
    expect(Number(e.headers?.get('retry-after'))).toBeGreaterThanOrEqual(1)
    expect(e.headers?.get('anthropic-ratelimit-requests-remaining')).toBe('0')
    expect(e.headers?.get('anthropic-ratelimit-requests-reset')).toMatch(/Z$/)
    expect(e.headers?.get('ratelimit')).toMatch(/^"burst";r=0;t=\d+$/)
  })

  it('sends the input- and output-token headers on a 429 too, as a success reports them', async () => {
    const limited = new Anthropic({ apiKey: gated.key, baseURL: gw.url, maxRetries: 0 })
    let input = 0
    let output = 0
    let success: Headers | undefined
    for (let i = 0; i < 2; i++) {
      const { data, response } = await limited.messages
        .create({ model, max_tokens: 10, messages })
        .withResponse()
      input += data.usage.input_tokens
      output += data.usage.output_tokens
      success = response.headers
    }
    expect(success!.get('anthropic-ratelimit-input-tokens-limit')).toBe('400000')
    const error = await limited.messages.create({ model, max_tokens: 10, messages }).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(RateLimitError)
    const h = (error as RateLimitError).headers!
    expect(h.get('anthropic-ratelimit-requests-remaining')).toBe('0')
    // Denied means not charged: what is left is the limit less the two settled calls' real usage.
    expect(h.get('anthropic-ratelimit-input-tokens-limit')).toBe('400000')
    expect(h.get('anthropic-ratelimit-input-tokens-remaining')).toBe(String(400_000 - input))
    expect(h.get('anthropic-ratelimit-output-tokens-limit')).toBe('80000')
    expect(h.get('anthropic-ratelimit-output-tokens-remaining')).toBe(String(80_000 - output))
    // The same window as the successes reported.
    for (const name of ['input', 'output']) {
      const reset = h.get(`anthropic-ratelimit-${name}-tokens-reset`)
      expect(reset).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/)
      expect(reset).toBe(success!.get(`anthropic-ratelimit-${name}-tokens-reset`))
    }
  })

  it("lets the SDK's own retry wait as told and then succeed", async () => {
    const patient = new Anthropic({ apiKey: retrying.key, baseURL: gw.url, maxRetries: 4 })
    let throttled = 0
    const onThrottle = () => throttled++
    gw.sluice.events.on('throttle', onThrottle)
    try {
      for (let i = 0; i < 4; i++) {
        const answer = await patient.messages.create({ model, max_tokens: 5, messages })
        expect(answer.content.length).toBeGreaterThan(0)
      }
    } finally {
      gw.sluice.events.off('throttle', onThrottle)
    }
    expect(throttled).toBeGreaterThanOrEqual(1)
  })
})
