/**
 * A Fastify hello-world server in its own process, bare or with a rate limiter, for the HTTP rows.
 * Every limiter gets one limit far above what a run can spend (nothing is ever denied) and the
 * default identity (the client IP), so the rows measure the cost of deciding and adding headers.
 * `bare-headers` decides nothing but sends sluice's headers as constants: the floor of any limiter
 * that sends them; `bare-headers-direct` sends them as the reply's own header object, without
 * reply.header() (as sluice's plugin does): the floor of that way of setting them.
 */
import rateLimit from '@fastify/rate-limit'
import Fastify from 'fastify'
import type { Redis } from 'ioredis'
import { sluice } from '../../src/http/fastify.js'
import { MemoryStore, RedisStore, tokenBucket } from '../../src/index.js'
import { send, serve, workerConfig } from '../harness/child.js'
import { newClient } from '../harness/redis.js'

export type FastifyVariant =
  | 'bare'
  | 'bare-headers'
  | 'bare-headers-direct'
  | 'sluice-memory'
  | 'sluice-memory-ietf'
  | 'sluice-memory-legacy'
  | 'sluice-redis'
  | 'sluice-redis-legacy'
  | 'peer-memory'
  | 'peer-redis'

interface Config {
  variant: FastifyVariant
  redisUrl?: string
}

const { variant, redisUrl } = workerConfig<Config>()
const app = Fastify({ logger: false })
let client: Redis | undefined
let store: MemoryStore | RedisStore | undefined
let info: Record<string, unknown> = {}

// One anonymous (per-IP) tier with one limit that a run cannot exhaust.
const TIERS = {
  anonymous: { scope: 'ip', limits: { rps: tokenBucket({ capacity: 1e9, refillPerSecond: 1 }) } },
} as const

if (variant === 'bare-headers' || variant === 'bare-headers-direct') {
  // The headers sluice-memory sends on an allowed request, built by sluice itself so that they
  // stay in sync; loaded here only, so that the other variants do not load the HTTP layer.
  const { Sluice } = await import('../../src/http/core.js')
  const headerStore = new MemoryStore()
  const result = await new Sluice({ store: headerStore, logger: false, tiers: TIERS }).check({
    method: 'GET',
    url: '/',
    headers: {},
    remoteAddress: '127.0.0.1',
  })
  await headerStore.close()
  const headers = result.headers
  if (variant === 'bare-headers') {
    app.addHook('onRequest', (_request, reply, next) => {
      reply.headers(headers)
      next()
    })
  } else {
    // The cheapest way to send them: a new object literal each request made the reply's own
    // header object, as sluice's plugin does with its headers (no reply.header(): no lower-casing,
    // no store per header). A literal, as sluice's is: a spread copy of the constant object took
    // V8's slow path on every request (a new map, migrated, when Fastify added content-type).
    const h = headers
    const fresh = () => ({
      'ratelimit-policy': h['ratelimit-policy']!,
      ratelimit: h.ratelimit!,
      'x-ratelimit-limit': h['x-ratelimit-limit']!,
      'x-ratelimit-remaining': h['x-ratelimit-remaining']!,
      'x-ratelimit-reset': h['x-ratelimit-reset']!,
      'x-ratelimit-limit-requests': h['x-ratelimit-limit-requests']!,
      'x-ratelimit-remaining-requests': h['x-ratelimit-remaining-requests']!,
      'x-ratelimit-reset-requests': h['x-ratelimit-reset-requests']!,
    })
    if (Object.keys(fresh()).join() !== Object.keys(h).join()) throw new Error('the default headers changed')
    let key: symbol | undefined
    app.addHook('onRequest', (_request, reply, next) => {
      key ??= Object.getOwnPropertySymbols(reply).find((s) => s.description === 'fastify.reply.headers')!
      ;(reply as unknown as Record<symbol, unknown>)[key] = fresh()
      next()
    })
  }
  info = { headers }
} else if (variant !== 'bare') {
  const redis = variant.includes('redis')
  if (redis) {
    if (!redisUrl) throw new Error(`${variant} needs a redisUrl`)
    client = newClient(redisUrl)
    await client.ping()
  }
  if (variant.startsWith('peer')) {
    await app.register(rateLimit, { max: 1e9, timeWindow: 3_600_000, ...(client ? { redis: client } : {}) })
  } else {
    store = client ? new RedisStore({ client }) : new MemoryStore()
    await app.register(
      sluice as never,
      {
        store,
        // The lean variants, as `headers` lets a user choose: only the IETF draft's two headers, or
        // only the peer's set (X-RateLimit-Limit/-Remaining/-Reset).
        ...(variant === 'sluice-memory-ietf'
          ? { headers: { ietf: true, legacy: false, openai: false } }
          : variant === 'sluice-memory-legacy' || variant === 'sluice-redis-legacy'
            ? { headers: { ietf: false, legacy: true, openai: false } }
            : {}),
        tiers: TIERS,
      } as never,
    )
  }
}

app.get('/', async () => ({ hello: 'world' }))
const address = await app.listen({ host: '127.0.0.1', port: 0 })

serve(
  async () => undefined,
  async () => {
    await app.close()
    await store?.close()
    await client?.quit()
  },
)
send({ type: 'ready', info: { ...info, url: `${address}/` } })
