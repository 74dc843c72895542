/**
 * A database key is decided with its team's and its end user's limits and budgets in one atomic
 * step: a team budget spent by one key refuses the team's other keys (charging them nothing), a
 * team request limit admits exactly its N across keys and concurrency, a user's own limit applies
 * to the user's key, and a restart of an embedded gateway keeps a spent team budget spent.
 * Through the gateway, with the official openai client, on SQLite and the memory store / Redis.
 */
import { createHash } from 'node:crypto'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import OpenAI, { RateLimitError } from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { GatewayConfigInput } from '../../src/gateway/config/schema.js'
import { type Gateway, startGateway } from '../../src/gateway/index.js'
import { sqliteHarness } from '../control/harness.js'
import { startTestGateway, type TestGateway } from './helpers.js'

const TOKEN = 'test-admin-token-team-levels-0123456789'
const messages = [{ role: 'user' as const, content: 'Tell me about rivers and gates.' }]

async function admin(url: string, method: string, path: string, body?: unknown) {
  const response = await fetch(`${url}/admin/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const answer = { status: response.status, body: (await response.json()) as Record<string, unknown> }
  if (answer.status >= 400)
    throw new Error(`${method} ${path}: ${answer.status} ${JSON.stringify(answer.body)}`)
  return answer.body
}

function client(url: string, key: string) {
  return new OpenAI({ apiKey: key, baseURL: `${url}/v1`, maxRetries: 0 })
}

type Outcome = { ok: true } | { ok: false; error: RateLimitError }

async function call(url: string, key: string, maxTokens = 20): Promise<Outcome> {
  try {
    await client(url, key).chat.completions.create({ model: 'gpt-4o-mini', messages, max_tokens: maxTokens })
    return { ok: true }
  } catch (error) {
    if (error instanceof RateLimitError) return { ok: false, error }
    throw error
  }
}

function baseConfig(db: string): GatewayConfigInput {
  return {
    database: { url: db, keyTtl: '1h' },
    admin: { tokenHash: createHash('sha256').update(TOKEN).digest('hex') },
    // One dollar per token: budgets in whole calls.
    prices: { 'gpt-4o-mini': { input: 1_000_000, output: 1_000_000 } },
    tiers: {
      service: {
        scope: 'key',
        limits: { calls: { kind: 'fixedWindow', limit: 100_000, window: '1h' } },
        block: false,
      },
    },
  }
}

describe.each(['memory', 'redis'] as const)('team and user levels of database keys (SQLite, %s)', (kind) => {
  const sqlite = sqliteHarness()
  let gw: TestGateway

  beforeAll(async () => {
    await sqlite.setup()
    gw = await startTestGateway(kind, { ...baseConfig(sqlite.url()), ledger: { path: false } })
  }, 30_000)
  afterAll(async () => {
    await gw?.close()
    await sqlite.teardown()
  })

  it('refuses every key of a team once the team budget is spent, charging the refused key nothing', async () => {
    const team = `budget-${kind}`
    await admin(gw.url, 'POST', '/teams', { id: team, budgets: { usd: { limit: 200, period: 'day' } } })
    const a = await admin(gw.url, 'POST', '/keys', { name: 'a', tier: 'service', team })
    // Key b may make exactly one call of its own: a refusal by the team must not use it.
    const b = await admin(gw.url, 'POST', '/keys', {
      name: 'b',
      tier: 'service',
      team,
      limits: { once: { kind: 'slidingWindow', limit: 1, window: '1h' } },
    })
    let served = 0
    for (let i = 0; i < 50 && (await call(gw.url, a.key as string)).ok; i++) served++
    expect(served).toBeGreaterThan(0)
    expect(served).toBeLessThan(50)

    const refused = await call(gw.url, b.key as string)
    expect(refused.ok).toBe(false)
    const error = (refused as { error: RateLimitError }).error
    expect(error.message).toContain('team.budget_usd')
    expect(error.code).toBe('insufficient_quota')
    expect(error.headers?.get('x-should-retry')).toBe('false')

    // The team's budget raised: b's one call is still there (the refusal charged it nothing) …
    await admin(gw.url, 'PATCH', `/teams/${team}`, { budgets: { usd: { limit: 100_000, period: 'day' } } })
    expect((await call(gw.url, b.key as string)).ok).toBe(true)
    // … and now spent: the key's own limit refuses, and says so.
    const own = await call(gw.url, b.key as string)
    expect(own.ok).toBe(false)
    expect((own as { error: RateLimitError }).error.message).toContain('"once"')

    await gw.settled()
    await gw.control!.control.ledger.flush()
    const rows = (await admin(gw.url, 'GET', `/ledger?key=${b.id}&limit=100`)).items as Record<
      string,
      unknown
    >[]
    expect(rows.map((r) => [r.status, r.reason ?? null]).sort()).toEqual(
      [
        [200, null],
        [429, 'once'],
        [429, 'team.budget_usd'],
      ].sort(),
    )
  })

  it("refuses on a key's own budget, charging its team nothing", async () => {
    const team = `own-${kind}`
    const M = 12
    await admin(gw.url, 'POST', '/teams', {
      id: team,
      limits: { calls: { kind: 'slidingWindow', limit: M, window: '1h' } },
    })
    const spender = await admin(gw.url, 'POST', '/keys', {
      name: 'spender',
      tier: 'service',
      team,
      budgets: { usd: { limit: 100, period: 'day' } },
    })
    const other = await admin(gw.url, 'POST', '/keys', { name: 'other', tier: 'service', team })
    let served = 0
    let refusal: RateLimitError | undefined
    for (let i = 0; i < M && refusal === undefined; i++) {
      const outcome = await call(gw.url, spender.key as string)
      if (outcome.ok) served++
      else refusal = outcome.error
    }
    expect(refusal?.message).toContain('"budget_usd"')
    expect(served).toBeGreaterThan(0)
    expect(served).toBeLessThan(M - 1)
    // The team counted the served calls only: the other key has exactly the rest.
    let rest = 0
    while ((await call(gw.url, other.key as string, 1)).ok && rest <= M) rest++
    expect(rest).toBe(M - served)
  })

  it('admits exactly N of 200 concurrent calls across two keys of a team with a limit of N', async () => {
    const team = `limit-${kind}`
    const N = 37
    await admin(gw.url, 'POST', '/teams', {
      id: team,
      limits: { calls: { kind: 'slidingWindow', limit: N, window: '1h' } },
    })
    const keys = [
      (await admin(gw.url, 'POST', '/keys', { name: 'x', tier: 'service', team })).key as string,
      (await admin(gw.url, 'POST', '/keys', { name: 'y', tier: 'service', team })).key as string,
    ]
    const outcomes = await Promise.all(Array.from({ length: 200 }, (_, i) => call(gw.url, keys[i % 2]!, 5)))
    expect(outcomes.filter((o) => o.ok).length).toBe(N)
    const refusal = outcomes.find((o) => !o.ok) as { error: RateLimitError }
    expect(refusal.error.message).toContain('team.calls')
    await gw.settled()
  })

  it("applies an end user's own limits to the user's key, beside the key's", async () => {
    const user = `alice-${kind}`
    await admin(gw.url, 'PUT', `/users/${user}`, {
      limits: { calls: { kind: 'slidingWindow', limit: 2, window: '1h' } },
    })
    const one = await admin(gw.url, 'POST', '/keys', { name: 'u1', tier: 'service', user })
    const two = await admin(gw.url, 'POST', '/keys', { name: 'u2', tier: 'service', user })
    const other = await admin(gw.url, 'POST', '/keys', { name: 'other', tier: 'service' })
    expect((await call(gw.url, one.key as string)).ok).toBe(true)
    expect((await call(gw.url, two.key as string)).ok).toBe(true)
    const refused = await call(gw.url, one.key as string)
    expect(refused.ok).toBe(false)
    expect((refused as { error: RateLimitError }).error.message).toContain('user.calls')
    // A key of no such user is not concerned.
    expect((await call(gw.url, other.key as string)).ok).toBe(true)
  })
})

describe('a spent team budget across a restart of an embedded gateway (SQLite + memory)', () => {
  const sqlite = sqliteHarness()
  beforeAll(() => sqlite.setup())
  afterAll(() => sqlite.teardown())

  it('stays spent', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-team-restart-'))
    const config: GatewayConfigInput = {
      ...baseConfig(sqlite.url()),
      port: 0,
      prefix: `team-restart-${process.pid}:`,
      ledger: { path: false },
      store: { type: 'memory' },
      snapshot: { path: join(dir, 'memory-store.json'), interval: '1h' },
    }
    const start = () => startGateway(config, { logger: false, env: {} })
    let gw: Gateway = await start()
    let keys: string[]
    try {
      await admin(gw.url, 'POST', '/teams', {
        id: 'restart',
        budgets: { usd: { limit: 200, period: 'day' } },
      })
      keys = [
        (await admin(gw.url, 'POST', '/keys', { name: 'r1', tier: 'service', team: 'restart' }))
          .key as string,
        (await admin(gw.url, 'POST', '/keys', { name: 'r2', tier: 'service', team: 'restart' }))
          .key as string,
      ]
      let served = 0
      for (let i = 0; i < 50 && (await call(gw.url, keys[0]!)).ok; i++) served++
      expect(served).toBeGreaterThan(0)
      expect((await call(gw.url, keys[1]!)).ok).toBe(false)
    } finally {
      await gw.close()
    }
    gw = await start()
    try {
      const after = await call(gw.url, keys[1]!)
      expect(after.ok).toBe(false)
      expect((after as { error: RateLimitError }).error.message).toContain('team.budget_usd')
    } finally {
      await gw.close()
    }
  }, 60_000)
})
