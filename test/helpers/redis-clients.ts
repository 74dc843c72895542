import { Redis } from 'ioredis'
import { afterAll, beforeAll } from 'vitest'
import { type RedisServer, startRedis } from './redis-server.js'

/**
 * An ioredis client of its own whose script calls that ran (FCALL, or EVALSHA / EVAL; not one
 * refused for a library or script not loaded yet) are counted, and whose script calls' arguments
 * are kept in `sent` (the name upper-cased, then the arguments as ioredis sends them: numbers as
 * text). Counted where every command goes, `sendCommand`: the detector store sends its script
 * calls there itself (src/store/detectors/ioredis-binary.ts). The caller disconnects it.
 */
export function countedClient(url: string): { client: Redis; scriptCalls: () => number; sent: unknown[][] } {
  const client = new Redis(url)
  let calls = 0
  const sent: unknown[][] = []
  type Sent = { name: string; args: unknown[] }
  const send = client.sendCommand.bind(client) as unknown as (command: Sent, ...rest: unknown[]) => unknown
  ;(client as unknown as { sendCommand: typeof send }).sendCommand = (command, ...rest) => {
    const reply = send(command, ...rest)
    const name = command.name.toUpperCase()
    // (With a stream: ioredis sending a queued command once connected, counted when queued.)
    if (rest.length > 0 || !['FCALL', 'EVALSHA', 'EVAL'].includes(name)) return reply
    sent.push([name, ...command.args])
    return (reply as Promise<unknown>).then((r) => {
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
