import { Redis } from 'ioredis'
import { afterAll, beforeAll } from 'vitest'
import { type RedisServer, startRedis } from './redis-server.js'

/**
 * An ioredis client of its own whose script calls that ran (FCALL, or EVALSHA / EVAL; not one
 * refused for a library or script not loaded yet) are counted, and whose script calls' arguments
 * are kept in `sent`. The caller disconnects it.
 */
export function countedClient(url: string): { client: Redis; scriptCalls: () => number; sent: unknown[][] } {
  const client = new Redis(url)
  let calls = 0
  const sent: unknown[][] = []
  const call = client.call.bind(client) as (...args: unknown[]) => Promise<unknown>
  ;(client as unknown as { call: typeof call }).call = (...args: unknown[]) => {
    const reply = call(...args)
    if (!['FCALL', 'EVALSHA', 'EVAL'].includes(String(args[0]))) return reply
    sent.push(args)
    return reply.then((r) => {
      calls++
      return r
    })
  }
  return { client, scriptCalls: () => calls, sent }
}

/**
 * For a test file: a redis-server started before its tests and stopped after them, and clients of
 * it disconnected after them too — `client()` a plain one, `counted()` a counted one (above).
 */
export function redisForFile(): {
  client: () => Redis
  counted: () => ReturnType<typeof countedClient>
  url: () => string
} {
  let redis: RedisServer | undefined
  const clients: Redis[] = []
  beforeAll(async () => {
    redis = await startRedis()
  })
  afterAll(async () => {
    for (const c of clients) c.disconnect()
    await redis?.stop()
  })
  return {
    url: () => redis!.url,
    client() {
      const client = new Redis(redis!.url)
      clients.push(client)
      return client
    },
    counted() {
      const c = countedClient(redis!.url)
      clients.push(c.client)
      return c
    },
  }
}
