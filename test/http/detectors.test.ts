/**
 * The detectors in the library, without the gateway: an Express app with sluice/express and the
 * `detectors` option (its `prompt` hook reads the app's own body) throttles a prompt loop and
 * says why — with a MemoryStore, and with a RedisStore (the detector state then goes to the same
 * Redis by itself).
 */
import type { AddressInfo } from 'node:net'
import express from 'express'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { sluice } from '../../src/http/express.js'
import type { DetectionEvent } from '../../src/http/index.js'
import { fixedWindow, MemoryStore } from '../../src/index.js'
import { RedisDetectorStore } from '../../src/store/detectors/redis.js'
import { RedisStore } from '../../src/store/redis/store.js'
import type { Store } from '../../src/store/types.js'
import { type RedisServer, startRedis } from '../helpers/redis-server.js'
import { clearOfWindowEdge, MINUTE } from '../helpers/window-edge.js'

let redis: RedisServer
beforeAll(async () => {
  redis = await startRedis()
})
afterAll(() => redis.stop())

const kinds: [string, () => Store][] = [
  ['memory', () => new MemoryStore()],
  ['redis', () => new RedisStore({ url: redis.url })],
]

describe.each(kinds)('sluice/express with detectors (%s store)', (kind, makeStore) => {
  it('throttles a prompt loop after the configured count, with the reason in the body', async () => {
    const store = makeStore()
    const limit = sluice({
      store,
      prefix: `mw-${kind}-${process.pid}:`,
      tiers: {
        anonymous: { scope: 'ip', limits: { calls: fixedWindow({ limit: 1000, windowMs: 3_600_000 }) } },
      },
      logger: false,
      detectors: {
        loop: { alertAt: 4, throttleAt: 4, blockAt: 0, throttlePerMinute: 1 },
        prompt: (req) => (req.body as { prompt?: string } | undefined)?.prompt,
      },
    })
    if (kind === 'redis') expect(limit.core.detectors!.store).toBeInstanceOf(RedisDetectorStore)
    const seen: DetectionEvent[] = []
    limit.core.events.on('detection', (e) => seen.push(e))
    const app = express()
    app.use(express.json())
    app.post('/ask', limit, (_req, res) => {
      res.json({ ok: true })
    })
    const server = app.listen(0)
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/ask`
    const ask = (prompt: string) =>
      fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ prompt }),
      })
    try {
      // The throttle keeps one request a clock minute: no minute turns before the refusal.
      await clearOfWindowEdge(MINUTE, 10_000)
      const statuses: number[] = []
      for (let i = 0; i < 4; i++) statuses.push((await ask(`question ${i}`)).status)
      for (let i = 0; i < 4; i++) statuses.push((await ask('again?')).status)
      const refused = await ask('again?')
      expect(statuses.slice(0, 4)).toEqual([200, 200, 200, 200])
      expect(refused.status).toBe(429)
      expect(refused.headers.get('x-should-retry')).toBe('false')
      const body = (await refused.json()) as { error: { code: string; message: string } }
      expect(body.error.code).toBe('prompt_loop')
      expect(seen.map((e) => [e.detector, e.level, e.subject.startsWith('ip:')])).toEqual([
        ['loop', 'throttle', true],
      ])
    } finally {
      server.close()
      await limit.core.close()
      await store.close()
    }
  })
})
