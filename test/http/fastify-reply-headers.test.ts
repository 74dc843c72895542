/**
 * The Fastify plugin writes an admitted request's headers into the reply's own header object
 * (fastify.ts, REPLY_HEADERS) instead of one reply.header() per header. The response must carry
 * the same header lines, in the same order, as reply.header() would give; headers set before the
 * check (an earlier hook) must stay, first; what a handler adds to one reply must never reach
 * another; and with the installed Fastify the direct path must be the one taken.
 */
import { request as httpRequest } from 'node:http'
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import { sluice } from '../../src/http/fastify.js'
import { Sluice } from '../../src/http/index.js'
import { tokenBucket } from '../../src/index.js'
import { MemoryStore } from '../../src/store/memory.js'
import { DEFAULT_HEADER_NAMES } from '../helpers/default-headers.js'

/** A fixed clock: two servers answering one request each send the same figures. */
const NOW = 1_800_000_000_123
const TIERS = {
  anonymous: { scope: 'ip', limits: { rps: tokenBucket({ capacity: 1e9, refillPerSecond: 1 }) } },
} as const

const apps: FastifyInstance[] = []
afterEach(async () => {
  for (const app of apps.splice(0)) {
    app.server.closeAllConnections()
    await app.close()
  }
})

/** Each header line of a response as sent, in order (name as sent, value). */
async function rawHeaders(app: FastifyInstance, path = '/'): Promise<[string, string][]> {
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('not listening')
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: address.port, path, agent: false }, (res) => {
      res.resume()
      res.on('end', () => {
        const lines: [string, string][] = []
        for (let i = 0; i < res.rawHeaders.length; i += 2) {
          const name = res.rawHeaders[i]!
          // The date changes by the second and is Node's own: not ours to compare.
          if (name.toLowerCase() !== 'date') lines.push([name, res.rawHeaders[i + 1]!])
        }
        resolve(lines)
      })
    })
    req.on('error', reject)
    req.end()
  })
}

async function listen(app: FastifyInstance): Promise<FastifyInstance> {
  apps.push(app)
  await app.listen({ port: 0, host: '127.0.0.1' })
  return app
}

/** The plugin, with an app-wide hook before it (which runs first) when given. */
async function pluginApp(
  before?: (reply: FastifyReply) => void,
  options: Record<string, unknown> = {},
): Promise<FastifyInstance> {
  const app = Fastify({ logger: false })
  if (before !== undefined) {
    app.addHook('onRequest', (_request, reply, next) => {
      before(reply)
      next()
    })
  }
  await app.register(sluice, {
    store: new MemoryStore({ now: () => NOW }),
    logger: false,
    tiers: TIERS,
    ...options,
  })
  app.get('/', async () => ({ hello: 'world' }))
  return listen(app)
}

/** The same check, its headers set the way the plugin set them before: one reply.header() each. */
async function referenceApp(before?: (reply: FastifyReply) => void): Promise<FastifyInstance> {
  const core = new Sluice({ store: new MemoryStore({ now: () => NOW }), logger: false, tiers: TIERS })
  const app = Fastify({ logger: false })
  app.addHook('onRequest', async (request, reply) => {
    before?.(reply)
    const result = await core.check({
      method: request.method,
      url: request.url,
      headers: request.headers,
      remoteAddress: request.raw.socket.remoteAddress,
    })
    for (const name in result.headers) reply.header(name, result.headers[name]!)
  })
  app.addHook('onClose', () => core.close())
  app.get('/', async () => ({ hello: 'world' }))
  return listen(app)
}

describe('Fastify plugin: headers written into the reply', () => {
  it('sends the same header lines in the same order as one reply.header() per header', async () => {
    const sent = await rawHeaders(await pluginApp())
    const reference = await rawHeaders(await referenceApp())
    expect(sent).toEqual(reference)
    // The rate-limit headers come first, before Fastify's own.
    expect(sent.slice(0, 8).map(([name]) => name)).toEqual(DEFAULT_HEADER_NAMES)
    expect(sent).toContainEqual(['ratelimit', '"rps";r=999999999;t=1'])
  })

  it('keeps headers an earlier hook set, before its own, as reply.header() would', async () => {
    const early = (reply: FastifyReply) => {
      reply.header('x-request-id', 'abc')
      reply.header('X-Mixed-Case', 'kept')
    }
    const sent = await rawHeaders(await pluginApp(early))
    const reference = await rawHeaders(await referenceApp(early))
    expect(sent).toEqual(reference)
    expect(sent.slice(0, 3).map(([name]) => name)).toEqual([
      'x-request-id',
      'x-mixed-case',
      'ratelimit-policy',
    ])
  })

  it('never carries what a handler added to one reply into another', async () => {
    const app = Fastify({ logger: false })
    let n = 0
    await app.register(sluice, {
      store: new MemoryStore(),
      logger: false,
      tiers: TIERS,
      skip: (request) => request.url === '/skipped',
    })
    const handler = async (_request: unknown, reply: FastifyReply) => {
      n++
      if (n === 1) reply.header('x-first-only', 'yes')
      return { n }
    }
    app.get('/', handler)
    app.get('/skipped', handler)
    await listen(app)
    for (const path of ['/', '/skipped']) {
      n = 0
      const first = await rawHeaders(app, path)
      const second = await rawHeaders(app, path)
      expect(first.map(([name]) => name)).toContain('x-first-only')
      expect(second.map(([name]) => name)).not.toContain('x-first-only')
    }
  })

  it('with the installed Fastify, sets an admitted request’s headers without reply.header()', async () => {
    let calls = 0
    const app = await pluginApp((reply) => {
      // An own property over the prototype's method: counts every call made after this hook.
      const header = reply.header.bind(reply)
      reply.header = (name: string, value: unknown) => {
        calls++
        return header(name, value)
      }
    })
    const sent = await rawHeaders(app)
    expect(sent.map(([name]) => name)).toContain('x-ratelimit-remaining')
    expect(calls).toBe(0)
  })

  it('sets a refusal’s headers with reply.header(), and the 429 carries them', async () => {
    let calls = 0
    const app = await pluginApp(
      (reply) => {
        const header = reply.header.bind(reply)
        reply.header = (name: string, value: unknown) => {
          calls++
          return header(name, value)
        }
      },
      {
        tiers: {
          anonymous: { scope: 'ip', limits: { rps: tokenBucket({ capacity: 1, refillPerSecond: 1 }) } },
        },
      },
    )
    await rawHeaders(app)
    const refused = await rawHeaders(app)
    expect(refused.map(([name]) => name)).toEqual(
      expect.arrayContaining(['retry-after', 'x-ratelimit-remaining']),
    )
    expect(calls).toBeGreaterThan(0)
  })
})
