/**
 * After `kill -9` of an embedded gateway (SQLite + memory store) before any snapshot was written,
 * the database ledger's rows charge again every level a request was decided on: the key's own
 * overrides and budgets, its team's budget and its end user's budget — not only the tier's limits.
 * Real processes, keys, team and user made through the admin API, calls with the openai client.
 */
import { createHash } from 'node:crypto'
import OpenAI, { RateLimitError } from 'openai'
import { describe, expect, it } from 'vitest'
import type { GatewayConfigInput } from '../../src/gateway/config/schema.js'
import { sleep } from '../helpers/sleep.js'
import { type ServeProcess, startServe, tempDir } from './serve-process.js'

const TOKEN = 'test-admin-token-restart-levels-0123456789'
/** A day's budget of a few calls of gpt-4o at its default price. */
const BUDGET = { usd: { limit: 0.002, period: 'day' } }

const config: GatewayConfigInput = {
  ledger: { path: false },
  // No snapshot after the one taken at start: the ledger alone knows what came after.
  snapshot: { path: '.sluice/memory-store.json', interval: '1h' },
  admin: { tokenHash: createHash('sha256').update(TOKEN).digest('hex') },
  tiers: {
    service: {
      scope: 'key',
      limits: { calls: { kind: 'fixedWindow', limit: 100_000, window: '1d' } },
      block: false,
    },
  },
}

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

async function newKey(url: string, body: Record<string, unknown>): Promise<string> {
  return (await admin(url, 'POST', '/keys', { tier: 'service', ...body })).key as string
}

/** 'refused' carries the limit that refused (the 429's code names it in the message). */
async function call(url: string, key: string): Promise<'ok' | string> {
  const client = new OpenAI({ apiKey: key, baseURL: `${url}/v1`, maxRetries: 0 })
  return client.chat.completions
    .create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'Tell me a story.' }], max_tokens: 40 })
    .then(
      () => 'ok',
      (error: unknown) => {
        if (error instanceof RateLimitError) return `refused: ${error.message}`
        throw error
      },
    )
}

async function spend(url: string, key: string): Promise<number> {
  for (let i = 1; i <= 100; i++) if ((await call(url, key)) !== 'ok') return i - 1
  throw new Error('the limit was never reached')
}

describe('kill -9 before any snapshot: the ledger charges every level again', () => {
  it('keeps spent team, user and key budgets and key overrides spent', async () => {
    const dir = tempDir()
    let first: ServeProcess | undefined = await startServe(config, dir)
    const keys: Record<string, string> = {}
    try {
      const url = first.url
      await admin(url, 'POST', '/teams', { id: 'crew', budgets: BUDGET })
      await admin(url, 'PUT', '/users/ursula', { budgets: BUDGET })
      keys.crew1 = await newKey(url, { name: 'crew-1', team: 'crew' })
      keys.crew2 = await newKey(url, { name: 'crew-2', team: 'crew' })
      keys.user1 = await newKey(url, { name: 'ursula-1', user: 'ursula' })
      keys.user2 = await newKey(url, { name: 'ursula-2', user: 'ursula' })
      keys.budgeted = await newKey(url, { name: 'budgeted', budgets: BUDGET })
      keys.capped = await newKey(url, {
        name: 'capped',
        limits: { calls: { kind: 'slidingWindow', limit: 3, window: '1d' } },
      })
      keys.free = await newKey(url, { name: 'free' })

      expect(await spend(url, keys.crew1)).toBeGreaterThan(0)
      expect(await call(url, keys.crew2)).toMatch(/team\.budget_usd/)
      expect(await spend(url, keys.user1)).toBeGreaterThan(0)
      expect(await call(url, keys.user2)).toMatch(/user\.budget_usd/)
      expect(await spend(url, keys.budgeted)).toBeGreaterThan(0)
      expect(await spend(url, keys.capped)).toBe(3)
      // The database ledger writes its rows every 100 ms: let the last ones land, then no goodbye.
      await sleep(600)
      await first.stop('SIGKILL')
      first = undefined
    } finally {
      await first?.stop('SIGKILL')
    }

    const second = await startServe(config, dir)
    try {
      expect(await call(second.url, keys.crew2!)).toMatch(/team\.budget_usd/)
      expect(await call(second.url, keys.crew1!)).toMatch(/team\.budget_usd/)
      expect(await call(second.url, keys.user2!)).toMatch(/user\.budget_usd/)
      expect(await call(second.url, keys.budgeted!)).toMatch(/budget_usd/)
      expect(await call(second.url, keys.capped!)).toMatch(/calls/)
      // Keys with nothing spent are served: the refusals above are the past, not a broken gateway.
      expect(await call(second.url, keys.free!)).toBe('ok')
    } finally {
      expect(await second.stop('SIGTERM')).toBe(0)
    }
  }, 120_000)
})
