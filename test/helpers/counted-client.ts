import { Redis } from 'ioredis'

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
