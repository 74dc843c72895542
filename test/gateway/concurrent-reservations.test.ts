import { request } from 'undici'
import { afterAll, describe, expect, it } from 'vitest'
import { chatPromptTokens } from '../../src/gateway/dialects/openai-prompt.js'
import { encoderFor } from '../../src/gateway/tokens.js'
import { newKey, STORE_KINDS, startTestGateway, stopRedis } from './helpers.js'

afterAll(stopRedis)

describe.each(STORE_KINDS)('concurrent reservations (%s store)', (kind) => {
  it('50 simultaneous calls estimated at 400 tokens on a 10,000 tokens/hour key: exactly 25 admitted', async () => {
    const { key, entry } = newKey('tph', 'tph-1')
    const gw = await startTestGateway(kind, {
      tiers: {
        tph: {
          scope: 'key',
          limits: { tokens: { kind: 'tokenBucket', unit: 'tokens', capacity: 10_000, per: '1h' } },
          block: false,
        },
      },
      auth: { keys: [entry] },
    })
    try {
      const messages = [{ role: 'user', content: 'Summarise the history of irrigation.' }]
      const prompt = chatPromptTokens(await encoderFor('o200k_base'), { messages })
      const body = JSON.stringify({ model: 'gpt-4o-mini', messages, max_tokens: 400 - prompt, stream: true })
      // Admitted calls stall upstream after one token, so none of them settles (and refunds) before
      // all 50 were decided: what is admitted is what the reservations alone allowed.
      const controllers = Array.from({ length: 50 }, () => new AbortController())
      const responses = await Promise.all(
        controllers.map((c) =>
          request(`${gw.url}/v1/chat/completions`, {
            method: 'POST',
            headers: {
              authorization: `Bearer ${key}`,
              'content-type': 'application/json',
              'x-mock-fail': 'stall:1',
            },
            body,
            signal: c.signal,
          }),
        ),
      )
      const statuses = responses.map((r) => r.statusCode)
      expect(statuses.filter((s) => s === 200)).toHaveLength(25)
      expect(statuses.filter((s) => s === 429)).toHaveLength(25)
      for (const r of responses) {
        if (r.statusCode === 429) {
          const error = (await r.body.json()) as { error: { type: string } }
          expect(error.error.type).toBe('tokens')
        }
      }
      // While they are held, the bucket is spent: 25 × 400 reserved.
      expect(await gw.used('tph', 'key:tph-1', 'tokens')).toBeGreaterThanOrEqual(25 * 400 - 5)
      responses.forEach((r, i) => {
        if (r.statusCode === 200) {
          r.body.on('error', () => {})
          controllers[i]!.abort()
        }
      })
      await gw.settled()
      const records = await gw.ledgerRecords()
      expect(records).toHaveLength(25)
      // Each aborted call is charged its prompt and the one token generated before it stalled.
      for (const r of records)
        expect(r).toMatchObject({ outcome: 'aborted', promptTokens: prompt, completionTokens: 1 })
      expect(gw.mock!.records.filter((r) => r.outcome === 'stalled')).toHaveLength(25)
    } finally {
      await gw.close()
    }
  })
})
