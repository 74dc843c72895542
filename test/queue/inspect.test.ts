/**
 * Listing and inspecting queues (the admin API's view, docs/queueing.md) on every store: the
 * queues under a prefix, the tickets waiting in each, how long the oldest has waited.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MemoryStore } from '../../src/store/memory.js'
import { queuesOf } from '../../src/store/queues.js'
import { RedisStore } from '../../src/store/redis/store.js'
import type { Store } from '../../src/store/types.js'
import { type RedisServer, startRedis } from '../helpers/redis-server.js'
import { type ClientKind, type MadeClient, singleClient } from '../helpers/store-clients.js'

let server: RedisServer
const made: MadeClient[] = []
beforeAll(async () => {
  server = await startRedis()
})
afterAll(async () => {
  for (const m of made) await m.close()
  await server?.stop()
})

async function storeOf(kind: 'memory' | ClientKind): Promise<Store> {
  if (kind === 'memory') return new MemoryStore()
  const client = await singleClient(kind, server.url)
  made.push(client)
  return new RedisStore({ client: client.client })
}

const TICKET = { flow: 'f', weight: 1, leaseMs: 30_000, maxPerFlow: 10, maxTotal: 10 }

describe.each(['memory', 'ioredis 6', 'node-redis'] as const)('queues listed and inspected (%s)', (kind) => {
  it('lists the queues under a prefix, counts their tickets and the oldest wait, and drains to 0', async () => {
    const store = await storeOf(kind)
    const queues = queuesOf(store)
    const base = `inspect-${kind.replace(/\W/g, '')}-${process.pid}:`
    const a = `${base}{t:key:a}!queue`
    const b = `${base}{t:key:b}!queue`
    const other = `other-${base}{t:key:c}!queue`
    const tickets = [
      [a, (await queues.enqueue(a, { ...TICKET, waiter: 'w1' })) as { ticket: string }],
      [a, (await queues.enqueue(a, { ...TICKET, waiter: 'w2' })) as { ticket: string }],
      [b, (await queues.enqueue(b, { ...TICKET, waiter: 'w3' })) as { ticket: string }],
    ] as const
    await queues.enqueue(other, { ...TICKET, waiter: 'w4' })

    expect((await queues.keys!(base, 100)).sort()).toEqual([a, b])
    const viewA = await queues.inspect!(a)
    expect(viewA.waiting).toBe(2)
    expect(viewA.oldestWaitMs).toBeGreaterThanOrEqual(0)
    expect((await queues.inspect!(b)).waiting).toBe(1)

    for (const [key, t] of tickets) await queues.leave(key, t.ticket)
    expect(await queues.inspect!(a)).toEqual({ waiting: 0, oldestWaitMs: undefined })
    expect((await queues.keys!(base, 100)).length).toBe(0)
    await store.close()
  })
})
