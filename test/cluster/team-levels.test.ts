/**
 * On a Redis Cluster the levels of a request (its key's, its team's) share the team's hash slot,
 * so one script decides them atomically: 200 concurrent calls across two keys of a team with a
 * team limit of N admit exactly N. Through the gateway (SQLite control database), openai client.
 */
import { createHash } from 'node:crypto'
import OpenAI, { RateLimitError } from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Gateway, startGateway } from '../../src/gateway/index.js'
import { sqliteHarness } from '../control/harness.js'
import { type RedisClusterServer, startRedisCluster } from '../helpers/redis-cluster.js'

const TOKEN = 'test-admin-token-cluster-levels-0123456789'

async function admin(url: string, method: string, path: string, body?: unknown) {
  const response = await fetch(`${url}/admin/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const json = (await response.json()) as Record<string, unknown>
  if (response.status >= 400) throw new Error(`${method} ${path}: ${response.status} ${JSON.stringify(json)}`)
  return json
}

describe('team levels on a Redis Cluster', () => {
  const sqlite = sqliteHarness()
  let cluster: RedisClusterServer
  let gw: Gateway

  beforeAll(async () => {
    await sqlite.setup()
    cluster = await startRedisCluster()
    gw = await startGateway(
      {
        port: 0,
        prefix: `team-cluster-${process.pid}:`,
        // Generous: a loaded test machine must not turn a slow answer into the outage policy.
        store: { type: 'redis', nodes: cluster.nodes.map((n) => n.url), timeout: '5s', failMode: 'closed' },
        database: { url: sqlite.url(), keyTtl: '1h' },
        admin: { tokenHash: createHash('sha256').update(TOKEN).digest('hex') },
        ledger: { path: false },
        tiers: {
          service: {
            scope: 'key',
            limits: { calls: { kind: 'fixedWindow', limit: 100_000, window: '1h' } },
            block: false,
          },
        },
      },
      { logger: process.env.SLUICE_TEST_LOG ? undefined : false, env: {} },
    )
  }, 60_000)
  afterAll(async () => {
    await gw?.close()
    await cluster?.stop()
    await sqlite.teardown()
  })

  it('admits exactly N of 200 concurrent calls across two keys of a team with a limit of N', async () => {
    const N = 23
    await admin(gw.url, 'POST', '/teams', {
      id: 'clustered',
      limits: { calls: { kind: 'slidingWindow', limit: N, window: '1h' } },
    })
    const keys: string[] = []
    for (const name of ['a', 'b']) {
      keys.push(
        (await admin(gw.url, 'POST', '/keys', { name, tier: 'service', team: 'clustered' })).key as string,
      )
    }
    const outcomes = await Promise.all(
      Array.from({ length: 200 }, async (_, i) => {
        const client = new OpenAI({ apiKey: keys[i % 2]!, baseURL: `${gw.url}/v1`, maxRetries: 0 })
        try {
          await client.chat.completions.create({
            model: 'gpt-4o-mini',
            messages: [{ role: 'user', content: 'hi' }],
            max_tokens: 5,
          })
          return 'ok'
        } catch (error) {
          if (error instanceof RateLimitError && error.message.includes('team.calls')) return 'team'
          throw error
        }
      }),
    )
    expect(outcomes.filter((o) => o === 'ok').length).toBe(N)
    expect(outcomes.filter((o) => o === 'team').length).toBe(200 - N)
  }, 60_000)
})
