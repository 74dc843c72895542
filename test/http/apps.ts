/**
 * The same small app on each adapter, on a real server on loopback:
 *   GET  /hello      limited, answers what sluice decided (JSON)
 *   POST /expensive  limited, costs 5 requests (route-level cost)
 *   POST /priced     limited, costs what the x-cost header says (an async cost function)
 *   GET  /boom       limited, the handler throws (500)
 *   GET  /stream     limited, a chunked streamed body
 *   GET  /slow?ms=n  limited, answers after n ms (for concurrency limits)
 *   GET  /twice      the same limiter applied twice (counts once)
 *   GET  /health     not limited
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { serve } from '@hono/node-server'
import express from 'express'
import Fastify from 'fastify'
import { Hono } from 'hono'
import { stream } from 'hono/streaming'
import type { RateLimitState, Sluice, SluiceOptions } from '../../src/http/index.js'
import { sleep } from '../helpers/sleep.js'

export const ADAPTERS = ['express', 'fastify', 'hono', 'node'] as const
export type AdapterName = (typeof ADAPTERS)[number]

export interface TestApp {
  url: string
  core: Sluice<never>
  close(): Promise<void>
}

// biome-ignore lint/suspicious/noExplicitAny: options are typed per adapter; tests build them generically.
export type AnyOptions = SluiceOptions<any>

function describeState(state: RateLimitState | null | undefined) {
  return {
    level: state?.level,
    subject: state?.identity?.subject,
    tier: state?.identity?.tier,
    kind: state?.identity?.kind,
    warning: state?.warning,
    shadowed: state?.shadowed,
    allowListed: state?.allowListed,
  }
}

/** A request header from whatever each adapter hands to hooks (for `authenticate` in tests). */
export function nativeHeader(native: unknown, name: string): string | undefined {
  const n = native as {
    req?: { header(name: string): string | undefined }
    headers?: Record<string, unknown>
  }
  if (n.headers !== undefined) {
    const v = n.headers[name]
    return typeof v === 'string' ? v : undefined
  }
  return n.req?.header(name)
}

function urlOf(server: Server): string {
  const { port } = server.address() as AddressInfo
  return `http://127.0.0.1:${port}`
}

function closer(server: Server, core: Sluice<never>): () => Promise<void> {
  return async () => {
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
    await core.close()
  }
}

async function startExpress(options: AnyOptions | undefined): Promise<TestApp> {
  const { sluice } = await import('../../src/http/express.js')
  const limit = options === undefined ? sluice() : sluice(options)
  const app = express()
  app.get('/hello', limit, (req, res) => {
    res.json(describeState(req.sluice))
  })
  app.post('/expensive', limit.withCost(5), (req, res) => {
    res.json(describeState(req.sluice))
  })
  app.post(
    '/priced',
    limit.withCost(async (req) => Number(req.headers['x-cost'])),
    (req, res) => {
      res.json(describeState(req.sluice))
    },
  )
  app.get('/boom', limit, () => {
    throw new Error('boom')
  })
  app.get('/stream', limit, async (_req, res) => {
    res.setHeader('content-type', 'text/plain')
    for (let i = 0; i < 3; i++) {
      res.write(`chunk ${i}\n`)
      await sleep(5)
    }
    res.end()
  })
  app.get('/slow', limit, async (req, res) => {
    await sleep(Number(req.query.ms ?? 100))
    res.json(describeState(req.sluice))
  })
  app.get('/twice', limit, limit, (req, res) => {
    res.json(describeState(req.sluice))
  })
  app.get('/health', (_req, res) => {
    res.json({ ok: true })
  })
  // Errors answered without Express's HTML page or its stack trace in test output.
  app.use((_error: unknown, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
    res.status(500).json({ error: 'boom' })
  })
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s))
  })
  return {
    url: urlOf(server),
    core: limit.core as Sluice<never>,
    close: closer(server, limit.core as Sluice<never>),
  }
}

async function startFastify(options: AnyOptions | undefined): Promise<TestApp> {
  const { sluice } = await import('../../src/http/fastify.js')
  const app = Fastify({ logger: false })
  await app.register(sluice, options ?? {})
  app.get('/hello', async (request) => describeState(request.sluice))
  app.post('/expensive', { config: { sluice: { cost: 5 } } }, async (request) =>
    describeState(request.sluice),
  )
  app.post(
    '/priced',
    { config: { sluice: { cost: async (request) => Number(request.headers['x-cost']) } } },
    async (request) => describeState(request.sluice),
  )
  app.get('/boom', async () => {
    throw new Error('boom')
  })
  app.get('/stream', async (_request, reply) => {
    const { Readable } = await import('node:stream')
    reply.header('content-type', 'text/plain')
    return reply.send(
      Readable.from(
        (async function* () {
          for (let i = 0; i < 3; i++) {
            yield `chunk ${i}\n`
            await sleep(5)
          }
        })(),
      ),
    )
  })
  app.get<{ Querystring: { ms?: string } }>('/slow', async (request) => {
    await sleep(Number(request.query.ms ?? 100))
    return describeState(request.sluice)
  })
  app.get('/twice', async (request) => describeState(request.sluice))
  app.get('/health', { config: { sluice: false } }, async () => ({ ok: true }))
  await app.listen({ port: 0, host: '127.0.0.1' })
  const core = app.sluice as unknown as Sluice<never>
  return {
    url: urlOf(app.server),
    core,
    close: async () => {
      app.server.closeAllConnections()
      await app.close()
      await core.close()
    },
  }
}

async function startHono(options: AnyOptions | undefined): Promise<TestApp> {
  const { sluice } = await import('../../src/http/hono.js')
  const limit = options === undefined ? sluice() : sluice(options)
  const app = new Hono()
  app.get('/hello', limit, (c) => c.json(describeState(c.get('sluice'))))
  app.post('/expensive', limit.withCost(5), (c) => c.json(describeState(c.get('sluice'))))
  app.post(
    '/priced',
    limit.withCost(async (c) => Number(c.req.header('x-cost'))),
    (c) => c.json(describeState(c.get('sluice'))),
  )
  app.get('/boom', limit, () => {
    throw new Error('boom')
  })
  app.get('/stream', limit, (c) => {
    c.header('content-type', 'text/plain')
    return stream(c, async (s) => {
      for (let i = 0; i < 3; i++) {
        await s.write(`chunk ${i}\n`)
        await sleep(5)
      }
    })
  })
  app.get('/slow', limit, async (c) => {
    await sleep(Number(c.req.query('ms') ?? 100))
    return c.json(describeState(c.get('sluice')))
  })
  app.get('/twice', limit, limit, (c) => c.json(describeState(c.get('sluice'))))
  app.get('/health', (c) => c.json({ ok: true }))
  app.onError((_error, c) => c.json({ error: 'boom' }, 500))
  const server = await new Promise<Server>((resolve) => {
    const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s as Server))
  })
  const core = limit.core as unknown as Sluice<never>
  return { url: urlOf(server), core, close: closer(server, core) }
}

async function startNode(options: AnyOptions | undefined): Promise<TestApp> {
  const { sluice } = await import('../../src/http/node.js')
  const limit = options === undefined ? sluice() : sluice(options)
  const expensive = limit.withCost(5)
  const priced = limit.withCost(async (req) => Number(req.headers['x-cost']))
  const json = (res: ServerResponse, status: number, body: unknown) => {
    res.statusCode = status
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify(body))
  }
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://x')
    if (url.pathname === '/health') return json(res, 200, { ok: true })
    const check = url.pathname === '/expensive' ? expensive : url.pathname === '/priced' ? priced : limit
    if (url.pathname === '/twice' && (await limit(req, res)) === null) return
    const state = await check(req, res)
    if (state === null) return
    switch (url.pathname) {
      case '/hello':
      case '/expensive':
      case '/priced':
      case '/twice':
        return json(res, 200, describeState(state))
      case '/boom':
        throw new Error('boom')
      case '/stream':
        res.setHeader('content-type', 'text/plain')
        for (let i = 0; i < 3; i++) {
          res.write(`chunk ${i}\n`)
          await sleep(5)
        }
        return res.end()
      case '/slow':
        await sleep(Number(url.searchParams.get('ms') ?? 100))
        return json(res, 200, describeState(state))
      default:
        return json(res, 404, { error: 'not found' })
    }
  }
  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) json(res, 500, { error: 'boom' })
      else res.end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const core = limit.core as unknown as Sluice<never>
  return { url: urlOf(server), core, close: closer(server, core) }
}

/** Starts the test app on an adapter; `undefined` options means the adapter is called with none at all. */
export function startApp(adapter: AdapterName, options: AnyOptions | undefined): Promise<TestApp> {
  switch (adapter) {
    case 'express':
      return startExpress(options)
    case 'fastify':
      return startFastify(options)
    case 'hono':
      return startHono(options)
    case 'node':
      return startNode(options)
  }
}
