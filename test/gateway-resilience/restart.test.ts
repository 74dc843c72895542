/**
 * The embedded default (SQLite + memory store) forgets nothing on restart: a key refused because
 * its dollar budget is spent stays refused after SIGTERM, after `kill -9` once the snapshot was
 * written, and after `kill -9` before it was (the ledger's rows charge it again). Real processes.
 */
import OpenAI, { RateLimitError } from 'openai'
import { describe, expect, it } from 'vitest'
import type { GatewayConfigInput } from '../../src/gateway/config/schema.js'
import { generateApiKey, hashApiKey } from '../../src/http/index.js'
import { sleep } from '../helpers/sleep.js'
import { startServe, tempDir } from './serve-process.js'

const key = generateApiKey()

function configWith(snapshotInterval: string): GatewayConfigInput {
  return {
    ledger: { path: false },
    snapshot: { path: '.sluice/memory-store.json', interval: snapshotInterval },
    tiers: {
      metered: {
        scope: 'key',
        // A day's budget of a few calls; plenty of requests. A sliding window, not a fixed one: a
        // fixed day starts again at 00:00 UTC, and a run across midnight found the key served.
        limits: { dollars: { kind: 'slidingWindow', unit: 'usd', limit: 0.002, window: '1d' } },
        block: false,
      },
    },
    auth: { keys: [{ id: 'budgeted', tier: 'metered', hash: hashApiKey(key) }] },
  }
}

async function call(url: string): Promise<'ok' | 'refused'> {
  const client = new OpenAI({ apiKey: key, baseURL: `${url}/v1`, maxRetries: 0 })
  return client.chat.completions
    .create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'Tell me a story.' }], max_tokens: 40 })
    .then(
      () => 'ok' as const,
      (error: unknown) => {
        if (error instanceof RateLimitError) return 'refused' as const
        throw error
      },
    )
}

async function spend(url: string): Promise<number> {
  for (let i = 1; i <= 100; i++) if ((await call(url)) === 'refused') return i - 1
  throw new Error('the budget was never spent')
}

describe('a spent budget stays spent across restarts of an embedded gateway', () => {
  it.each([
    ['SIGTERM', '1s', 0],
    ['SIGKILL after the snapshot', '200ms', 600],
    ['SIGKILL before any snapshot (the ledger charges it again)', '1h', 300],
  ] as const)(
    '%s',
    async (_name, interval, waitMs) => {
      const dir = tempDir()
      const first = await startServe(configWith(interval), dir)
      let served: number
      try {
        served = await spend(first.url)
        expect(served).toBeGreaterThan(0)
        await sleep(waitMs)
      } finally {
        await first.stop(waitMs === 0 ? 'SIGTERM' : 'SIGKILL')
      }
      const second = await startServe(configWith(interval), dir)
      try {
        expect(await call(second.url)).toBe('refused')
      } finally {
        expect(await second.stop('SIGTERM')).toBe(0)
      }
      // A fresh directory has no past: the same key is served again.
      const fresh = await startServe(configWith(interval), tempDir())
      try {
        expect(await call(fresh.url)).toBe('ok')
      } finally {
        await fresh.stop('SIGTERM')
      }
    },
    120_000,
  )
})
