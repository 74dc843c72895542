/**
 * Request bodies while they arrive: a stalled, trickling or endless upload is refused with 408 and
 * its connection closed; an address sends only `uploads.perIp` bodies at once; and a client the
 * gateway already refuses (unknown key, blocked) is answered from its headers, before its body.
 */
import { connect, type Socket } from 'node:net'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { GatewayConfigInput } from '../../src/gateway/config/schema.js'
import { type Gateway, startGateway } from '../../src/gateway/index.js'
import { type RedisServer, startRedis } from '../helpers/redis-server.js'
import { startTestGateway, type TestGateway } from './helpers.js'

interface RawAnswer {
  status: number
  headers: string
  body: string
  /** The server closed the connection (FIN or reset) after answering. */
  closed: boolean
  /** Body bytes this client had written when the answer came. */
  sent: number
}

/**
 * Sends headers announcing `length` body bytes on a raw socket, then what `send` writes; resolves
 * with the server's answer once the server closes the connection, or after `waitMs` (status 0
 * when no answer came at all).
 */
function upload(
  gatewayUrl: string,
  options: {
    length: number
    headers?: Record<string, string>
    send: (write: (bytes: number) => void, socket: Socket) => void
    waitMs?: number
  },
): Promise<RawAnswer> {
  const url = new URL(gatewayUrl)
  const socket = connect(Number(url.port), url.hostname)
  let sent = 0
  let sentAtAnswer = -1
  let data = ''
  const headers = {
    host: url.host,
    'content-type': 'application/json',
    'content-length': String(options.length),
    ...options.headers,
  }
  socket.on('connect', () => {
    const head = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`)
    socket.write(`POST /v1/chat/completions HTTP/1.1\r\n${head.join('')}\r\n`)
    options.send((bytes) => {
      if (socket.destroyed || !socket.writable) return
      socket.write(Buffer.alloc(bytes, 'a'))
      sent += bytes
    }, socket)
  })
  socket.on('data', (chunk) => {
    if (sentAtAnswer === -1) sentAtAnswer = sent
    data += chunk.toString('latin1')
  })
  socket.on('error', () => {})
  return new Promise((resolve) => {
    const finish = (closed: boolean) => {
      clearTimeout(timer)
      socket.destroy()
      const [head = '', body = ''] = data.split('\r\n\r\n')
      const status = Number(/^HTTP\/1\.1 (\d+)/.exec(head)?.[1] ?? 0)
      resolve({ status, headers: head.toLowerCase(), body, closed, sent: sentAtAnswer })
    }
    const timer = setTimeout(() => finish(false), options.waitMs ?? 8_000)
    socket.on('close', () => finish(true))
  })
}

const never = () => {}

describe('upload limits (memory store)', () => {
  let gw: TestGateway
  beforeAll(async () => {
    gw = await startTestGateway('memory', {
      uploads: { idleTimeout: '1s', timeout: '3s', minRate: '8kb', perIp: 2 },
    })
  })
  afterAll(() => gw?.close())

  it('refuses a stalled upload with 408 and closes its connection', async () => {
    const answer = await upload(gw.url, { length: 1_000_000, send: (write) => write(10_000) })
    expect(answer.status).toBe(408)
    expect(answer.closed).toBe(true)
    expect(answer.headers).toContain('connection: close')
    expect(JSON.parse(answer.body).error).toMatchObject({
      code: 'request_timeout',
      type: 'invalid_request_error',
    })
    expect(JSON.parse(answer.body).error.message).toMatch(/stopped arriving/)
  })

  it('refuses an upload that trickles in below minRate', async () => {
    const answer = await upload(gw.url, {
      length: 1_000_000,
      send: (write, socket) => {
        const timer = setInterval(() => write(500), 200) // 2.5 KB/s: never silent, far below 8 KB/s
        socket.on('close', () => clearInterval(timer))
      },
    })
    expect(answer.status).toBe(408)
    expect(JSON.parse(answer.body).error.message).toMatch(/too slowly/)
    expect(answer.closed).toBe(true)
  })

  it('refuses an upload still arriving after the timeout', async () => {
    const answer = await upload(gw.url, {
      length: 10_000_000,
      send: (write, socket) => {
        const timer = setInterval(() => write(2_000), 100) // 20 KB/s: above minRate, 10 MB takes ~8 min
        socket.on('close', () => clearInterval(timer))
      },
    })
    expect(answer.status).toBe(408)
    expect(JSON.parse(answer.body).error.message).toMatch(/did not arrive within 3 s/)
    expect(answer.closed).toBe(true)
  })

  it('lets one address send only perIp bodies at once; the next is refused before its body', async () => {
    const first = upload(gw.url, { length: 1_000_000, send: (write) => write(1_000) })
    const second = upload(gw.url, { length: 1_000_000, send: (write) => write(1_000) })
    await new Promise((r) => setTimeout(r, 300))
    const third = await upload(gw.url, { length: 1_000_000, send: never })
    expect(third.status).toBe(429)
    expect(JSON.parse(third.body).error.code).toBe('too_many_uploads')
    expect(third.closed).toBe(true)
    expect((await first).status).toBe(408)
    expect((await second).status).toBe(408)
    // Both slots are free again.
    const res = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
    })
    expect(res.status).toBe(200)
    await res.arrayBuffer()
  })

  it('frees an address slot as soon as its body is in', async () => {
    const body = JSON.stringify({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'x'.repeat(20_000) }],
    })
    for (let i = 0; i < 5; i++) {
      // Headers and half the body, then the rest a moment later: watched while it arrives.
      const answer = await upload(gw.url, {
        length: Buffer.byteLength(body),
        headers: { authorization: `Bearer ${gw.demoKey}`, connection: 'close' },
        send: (_write, socket) => {
          socket.write(body.slice(0, 10_000))
          setTimeout(() => socket.write(body.slice(10_000)), 100)
        },
      })
      expect(answer.status).toBe(200)
    }
  })

  it('answers an unknown key from its headers and closes the connection: the body is never read', async () => {
    const answer = await upload(gw.url, {
      length: 10_000_000,
      headers: { authorization: 'Bearer sk-sluice-not-a-key-of-this-gateway-000000' },
      send: (write) => write(64 * 1024),
    })
    expect(answer.status).toBe(401)
    expect(answer.closed).toBe(true)
    expect(answer.sent).toBe(64 * 1024)
  })
})

/** A tier that blocks after one denial, so that the test can get a subject blocked quickly. */
function blockingTier(): GatewayConfigInput['tiers'] {
  return {
    anonymous: {
      limits: {
        hourly: null,
        tokens: null,
        burst: null,
        inflight: null,
        second: { kind: 'slidingLog', limit: 1, window: '10s' },
      },
      block: { after: 1, within: '1m', durations: ['1h'] },
    },
  }
}

async function getBlocked(url: string): Promise<void> {
  const send = async () => {
    const res = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
    })
    await res.arrayBuffer()
    return res.status
  }
  expect([await send(), await send()]).toEqual([200, 429])
}

describe('a blocked client is refused before its body', () => {
  it('with the memory store', async () => {
    const gw = await startTestGateway('memory', { tiers: blockingTier() })
    try {
      await getBlocked(gw.url)
      const answer = await upload(gw.url, { length: 10_000_000, send: (write) => write(64 * 1024) })
      expect(answer.status).toBe(429)
      expect(answer.headers).toContain('x-should-retry: false')
      expect(JSON.parse(answer.body).error.message).toMatch(/blocked/)
      expect(answer.closed).toBe(true)
      expect(answer.sent).toBe(64 * 1024)
    } finally {
      await gw.close()
    }
  })

  it('refuses a large body whose subject got blocked while it arrived, without parsing it', async () => {
    const gw = await startTestGateway('memory', { tiers: blockingTier() })
    try {
      // Malformed on purpose: parsed, it would be a 400; refused unparsed, it is the block's 429.
      const body = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"${'a'.repeat(200_000)}`
      let finish: () => void = () => {}
      const answer = upload(gw.url, {
        length: body.length,
        send: (_write, socket) => {
          socket.write(body.slice(0, 100_000))
          finish = () => socket.write(body.slice(100_000))
        },
      })
      await new Promise((r) => setTimeout(r, 200))
      await getBlocked(gw.url)
      finish()
      const refused = await answer
      expect(refused.status).toBe(429)
      expect(JSON.parse(refused.body).error.message).toMatch(/blocked/)
    } finally {
      await gw.close()
    }
  })

  describe('with Redis, from the blocked-key cache', () => {
    let redis: RedisServer
    let gateway: Gateway
    let admin: Redis
    beforeAll(async () => {
      redis = await startRedis()
      admin = new Redis(redis.url)
      gateway = await startGateway(
        {
          port: 0,
          store: { type: 'redis', url: redis.url, blockedCache: { maxAge: '1m' } },
          prefix: `uploads-${process.pid}:`,
          tiers: blockingTier(),
          ledger: { path: false },
        },
        { env: {}, logger: false },
      )
    })
    afterAll(async () => {
      await gateway?.close()
      admin?.disconnect()
      await redis?.stop()
    })

    it('answers without a Redis call', async () => {
      await getBlocked(gateway.url)
      const calls = async () =>
        Number(/^total_commands_processed:(\d+)/m.exec(await admin.info('stats'))?.[1])
      const before = await calls()
      const answer = await upload(gateway.url, { length: 10_000_000, send: (write) => write(64 * 1024) })
      expect(answer.status).toBe(429)
      expect(answer.closed).toBe(true)
      expect(answer.sent).toBe(64 * 1024)
      // The INFO command that reads the count is the only command in between.
      expect((await calls()) - before).toBe(1)
    })
  })
})
