import OpenAI from 'openai'
import { request } from 'undici'
import { afterAll, describe, expect, it } from 'vitest'
import { newKey, STORE_KINDS, startTestGateway, stopRedis } from './helpers.js'

afterAll(stopRedis)

const messages = [{ role: 'user' as const, content: 'Explain weirs.' }]

describe.each(STORE_KINDS)('a tier with a queue (%s store)', (kind) => {
  it('waits instead of a 429, says how long on the answer, and shows the wait in /metrics', async () => {
    const { key, entry } = newKey('queued', 'queued-1')
    const { key: otherKey, entry: other } = newKey('unqueued', 'unqueued-1')
    const gw = await startTestGateway(kind, {
      tiers: {
        queued: {
          scope: 'key',
          limits: { burst: { kind: 'tokenBucket', capacity: 1, refillPerSecond: 1 } },
          queue: { maxWait: '10s', weight: 2 },
        },
        unqueued: {
          scope: 'key',
          limits: { burst: { kind: 'tokenBucket', capacity: 1, refillPerSecond: 0.01 } },
        },
      },
      auth: { keys: [entry, other] },
    })
    try {
      const waiting = new OpenAI({ apiKey: key, baseURL: `${gw.url}/v1`, maxRetries: 0 })
      const calls = await Promise.all(
        Array.from({ length: 3 }, () =>
          waiting.chat.completions
            .create({ model: 'gpt-4o-mini', messages, max_tokens: 5 })
            .withResponse()
            .then(({ response }) => response.headers.get('x-sluice-queue-ms')),
        ),
      )
      // Three calls at once on a bucket of one refilled once a second: every one answered, the
      // ones that came while it was empty after waiting (two, unless the machine stalled a second).
      const waited = calls.filter((h) => h !== null).map(Number)
      console.log(`[queue] gateway (${kind}): x-sluice-queue-ms ${waited.join(', ')}`)
      expect(calls).toHaveLength(3)
      expect(waited.length).toBeGreaterThanOrEqual(1)
      for (const ms of waited) expect(ms).toBeGreaterThanOrEqual(0)

      // The same limit without a queue refuses at once.
      const refusing = new OpenAI({ apiKey: otherKey, baseURL: `${gw.url}/v1`, maxRetries: 0 })
      const outcomes = await Promise.allSettled(
        Array.from({ length: 3 }, () =>
          refusing.chat.completions.create({ model: 'gpt-4o-mini', messages, max_tokens: 5 }),
        ),
      )
      expect(outcomes.filter((o) => o.status === 'rejected')).toHaveLength(2)

      const metrics = await (await request(`${gw.url}/metrics`)).body.text()
      expect(metrics).toContain(`sluice_queue_wait_seconds_count{tier="queued"} ${waited.length}`)
      expect(metrics).toMatch(/sluice_queue_waiting_requests\{tier="queued"\} 0/)
    } finally {
      await gw.close()
    }
  })

  it('rejects a bad queue in sluice.yaml naming the field', async () => {
    await expect(
      startTestGateway(kind, {
        tiers: { queued: { scope: 'key', limits: {}, queue: { maxWait: '-1s' } } },
      } as never),
    ).rejects.toThrow(/queue/)
  })
})
