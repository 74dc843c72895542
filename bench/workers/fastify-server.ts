/**
 * A Fastify hello-world server in its own process, bare or with a rate limiter, for the HTTP rows.
 * Every limiter gets one limit far above what a run can spend (nothing is ever denied) and the
 * default identity (the client IP), so the rows measure the cost of deciding and adding headers.
 */
import rateLimit from '@fastify/rate-limit'
import Fastify from 'fastify'
import type { Redis } from 'ioredis'
import { MemoryStore, RedisStore, tokenBucket } from '../../src/index.js'
import { loadFastifyPlugin } from '../adapters.js'
import { send, serve, workerConfig } from '../harness/child.js'
import { newClient } from '../harness/redis.js'

export type FastifyVariant =
  | 'bare'
  | 'sluice-memory'
  | 'sluice-memory-ietf'
  | 'sluice-redis'
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

if (variant !== 'bare') {
  const redis = variant.endsWith('redis')
  if (redis) {
    if (!redisUrl) throw new Error(`${variant} needs a redisUrl`)
    client = newClient(redisUrl)
    await client.ping()
  }
  if (variant.startsWith('peer')) {
    await app.register(rateLimit, { max: 1e9, timeWindow: 3_600_000, ...(client ? { redis: client } : {}) })
  } else {
    const plugin = await loadFastifyPlugin()
    if (!plugin.ok) throw new Error(plugin.reason)
    store = client ? new RedisStore({ client }) : new MemoryStore()
    // One anonymous (per-IP) tier with one limit that a run cannot exhaust.
    await app.register(
      plugin.value as never,
      {
        store,
        // The lean variant: only the IETF draft's two headers, as `headers` lets a user choose.
        ...(variant === 'sluice-memory-ietf'
          ? { headers: { ietf: true, legacy: false, openai: false } }
          : {}),
        tiers: {
          anonymous: { scope: 'ip', limits: { rps: tokenBucket({ capacity: 1e9, refillPerSecond: 1 }) } },
        },
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
send({ type: 'ready', info: { url: `${address}/` } })
