/**
 * A team's limit is a capacity its keys wait on: through the gateway with the official openai
 * client, a burst from two keys of one team on the team's request limit waits and is admitted as
 * the team's windows free, instead of 429s. SQLite control plane, memory store and Redis.
 */
import { createHash } from 'node:crypto'
import OpenAI from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { sqliteHarness } from '../control/harness.js'
import { startTestGateway, stopRedis, type TestGateway } from './helpers.js'

afterAll(stopRedis)

const TOKEN = 'test-admin-token-team-queue-0123456789'
const messages = [{ role: 'user' as const, content: 'Tell me about weirs.' }]

async function admin(url: string, method: string, path: string, body?: unknown) {
  const response = await fetch(`${url}/admin/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const answer = (await response.json()) as Record<string, unknown>
  if (response.status >= 400)
    throw new Error(`${method} ${path}: ${response.status} ${JSON.stringify(answer)}`)
  return answer
}

describe.each(['memory', 'redis'] as const)('keys waiting on their team limit (SQLite, %s)', (kind) => {
  const sqlite = sqliteHarness()
  let gw: TestGateway
  beforeAll(async () => {
    await sqlite.setup()
    gw = await startTestGateway(kind, {
      database: { url: sqlite.url(), keyTtl: '1h' },
      admin: { tokenHash: createHash('sha256').update(TOKEN).digest('hex') },
      ledger: { path: false },
      tiers: {
        service: {
          scope: 'key',
          limits: { calls: { kind: 'fixedWindow', limit: 100_000, window: '1h' } },
          block: false,
          queue: { maxWait: '30s' },
        },
      },
    })
  }, 30_000)
  afterAll(async () => {
    await gw?.close()
    await sqlite.teardown()
  })

  it('admits a burst of two keys as the team limit frees, instead of 429s', async () => {
    const team = `queue-${kind}`
    await admin(gw.url, 'POST', '/teams', {
      id: team,
      limits: { calls: { kind: 'fixedWindow', limit: 3, window: '2s' } },
    })
    const keys = [
      (await admin(gw.url, 'POST', '/keys', { name: 'x', tier: 'service', team })).key as string,
      (await admin(gw.url, 'POST', '/keys', { name: 'y', tier: 'service', team })).key as string,
    ]
    const clients = keys.map((k) => new OpenAI({ apiKey: k, baseURL: `${gw.url}/v1`, maxRetries: 0 }))
    const answers = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        clients[i % 2]!.chat.completions.create({ model: 'gpt-4o-mini', messages, max_tokens: 5 })
          .withResponse()
          .then(({ response }) => response.headers.get('x-sluice-queue-ms')),
      ),
    )
    // Every call answered (none refused by the team's limit: 10 calls need at least 4 of its
    // windows), those that found it full after waiting.
    expect(answers).toHaveLength(10)
    expect(answers.filter((h) => h !== null).length).toBeGreaterThanOrEqual(1)
    await gw.settled()
  })
})
