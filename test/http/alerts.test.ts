/**
 * Alerts are exact across processes: two processes share one Redis, 50 concurrent requests
 * (25 to each) cross 80 % of a 50-per-minute limit, and exactly one alert event is emitted and
 * exactly one webhook POST arrives — for each adapter. Webhook delivery itself is retried on
 * failure and never holds a request up.
 */
import { type ChildProcess, fork } from 'node:child_process'
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type AlertEvent, Sluice, type WebhookErrorEvent } from '../../src/http/index.js'
import { MemoryStore, slidingWindow } from '../../src/index.js'
import { type RedisServer, startRedis } from '../helpers/redis-server.js'
import { ADAPTERS } from './apps.js'
import { callMany } from './client.js'

const WORKER = fileURLToPath(new URL('./fixtures/alert-worker.ts', import.meta.url))

interface Receiver {
  url: string
  posts: { body: AlertEvent; headers: IncomingMessage['headers'] }[]
  /** Answer the next n posts with this status instead of 204. */
  failNext(n: number, status: number): void
  /** Hold the next posts this long before answering. */
  delayMs: number
  close(): Promise<void>
}

async function startReceiver(): Promise<Receiver> {
  let failures = 0
  let failStatus = 500
  const receiver: Receiver = {
    url: '',
    posts: [],
    delayMs: 0,
    failNext(n, status) {
      failures = n
      failStatus = status
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  }
  const server: Server = createServer((req, res) => {
    let data = ''
    req.on('data', (chunk) => {
      data += chunk
    })
    req.on('end', async () => {
      if (receiver.delayMs > 0) await new Promise((r) => setTimeout(r, receiver.delayMs))
      if (failures > 0) {
        failures--
        res.statusCode = failStatus
        return res.end()
      }
      receiver.posts.push({ body: JSON.parse(data), headers: req.headers })
      res.statusCode = 204
      res.end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`
  return receiver
}

function startWorker(job: object): { child: ChildProcess; ready: Promise<Record<string, string>> } {
  const child = fork(WORKER, [JSON.stringify(job)], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  const ready = new Promise<Record<string, string>>((resolve, reject) => {
    child.on('message', (m: { type: string; urls?: Record<string, string> }) => {
      if (m.type === 'ready') resolve(m.urls!)
    })
    child.once('exit', (code) => reject(new Error(`worker exited with ${code}`)))
  })
  return { child, ready }
}

describe('alerts across two processes sharing Redis', () => {
  let redis: RedisServer
  let receiver: Receiver
  beforeAll(async () => {
    redis = await startRedis()
    receiver = await startReceiver()
  })
  afterAll(async () => {
    await receiver.close()
    await redis.stop()
  })

  it('50 concurrent requests crossing 80 % → exactly one alert event and one webhook POST per adapter', async () => {
    const job = { redisUrl: redis.url, webhookUrl: receiver.url, prefix: 'alerts:' }
    const workers = [startWorker(job), startWorker(job)]
    const events: { adapter: string; event: AlertEvent }[] = []
    try {
      const urls = await Promise.all(workers.map((w) => w.ready))
      for (const w of workers) {
        w.child.on('message', (m: { type: string; adapter: string; event: AlertEvent }) => {
          if (m.type === 'alert') events.push(m)
        })
      }
      for (const adapter of ADAPTERS) {
        const replies = (
          await Promise.all(urls.map((u) => callMany(`${u[adapter]}/hello`, 25, () => ({}), 25)))
        ).flat()
        expect(replies.map((r) => r.status)).toEqual(Array(50).fill(200))
        expect(replies.filter((r) => r.body.level === 'alert')).toHaveLength(1)
      }
      for (const w of workers) {
        const flushed = new Promise<void>((resolve) =>
          w.child.on('message', (m: { type: string }) => m.type === 'flushed' && resolve()),
        )
        w.child.send('flush')
        await flushed
      }
    } finally {
      for (const w of workers) if (w.child.exitCode === null) w.child.kill()
    }
    for (const adapter of ADAPTERS) {
      const mine = events.filter((e) => e.adapter === adapter)
      expect(mine, adapter).toHaveLength(1)
      expect(mine[0]!.event).toMatchObject({
        event: 'sluice.alert',
        subject: 'ip:127.0.0.1',
        tier: `anon-${adapter}`,
        threshold: 0.8,
        limit: { name: 'minute', limit: 50, remaining: 10 },
      })
      const posts = receiver.posts.filter((p) => p.body.tier === `anon-${adapter}`)
      expect(posts, adapter).toHaveLength(1)
      expect(posts[0]!.body).toEqual(mine[0]!.event)
      expect(posts[0]!.headers['content-type']).toBe('application/json')
    }
  })
})

describe('webhook delivery', () => {
  let receiver: Receiver
  beforeAll(async () => {
    receiver = await startReceiver()
  })
  afterAll(async () => {
    await receiver.close()
  })

  function alertingSluice(webhook: object) {
    return new Sluice({
      logger: false,
      store: new MemoryStore(),
      tiers: { anonymous: { scope: 'ip', limits: { m: slidingWindow({ limit: 5, windowMs: 60_000 }) } } },
      webhook: webhook as never,
    })
  }
  const req = { method: 'GET', url: '/', headers: {}, remoteAddress: '192.0.2.1' }

  it('is retried after a 5xx and carries the configured headers', async () => {
    receiver.posts.length = 0
    receiver.failNext(2, 503)
    const s = alertingSluice({
      url: receiver.url,
      retries: 3,
      backoffMs: 10,
      headers: { authorization: 'Bearer hook' },
    })
    for (let i = 0; i < 4; i++) await s.check(req)
    await s.flush()
    expect(receiver.posts).toHaveLength(1)
    expect(receiver.posts[0]!.headers.authorization).toBe('Bearer hook')
  })

  it('gives up after its retries and reports webhookError; a 4xx is not retried', async () => {
    receiver.posts.length = 0
    receiver.failNext(10, 500)
    const s = alertingSluice({ url: receiver.url, retries: 2, backoffMs: 5 })
    const errors: WebhookErrorEvent[] = []
    s.events.on('webhookError', (e) => errors.push(e))
    for (let i = 0; i < 4; i++) await s.check(req)
    await s.flush()
    expect(errors).toHaveLength(1)
    expect(errors[0]).toMatchObject({ attempts: 3, error: 'HTTP 500' })
    receiver.failNext(1, 400)
    const t = alertingSluice({ url: receiver.url, retries: 2, backoffMs: 5 })
    t.events.on('webhookError', (e) => errors.push(e))
    for (let i = 0; i < 4; i++) await t.check(req)
    await t.flush()
    expect(errors[1]).toMatchObject({ attempts: 1, error: 'HTTP 400' })
    receiver.failNext(0, 500)
  })

  it('never holds up the request that triggered it, and times out a receiver that hangs', async () => {
    receiver.posts.length = 0
    receiver.delayMs = 5_000
    const s = alertingSluice({ url: receiver.url, retries: 0, timeoutMs: 200 })
    const errors: WebhookErrorEvent[] = []
    s.events.on('webhookError', (e) => errors.push(e))
    let alertResolved = false
    for (let i = 0; i < 4; i++) {
      const r = await s.check(req)
      if (r.state.level === 'alert') alertResolved = true
    }
    // The alerting request was answered while the receiver was still holding the POST.
    expect(alertResolved).toBe(true)
    expect(receiver.posts).toHaveLength(0)
    await s.flush()
    expect(errors).toHaveLength(1)
    expect(errors[0]!.error).toMatch(/abort|timeout/i)
    receiver.delayMs = 0
  })
})
