import { cpSync, mkdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { Redis } from 'ioredis'
import { createClient } from 'redis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Limiter, SluiceInputError, tokenBucket } from '../src/index.js'
import { BlockedKeyCache } from '../src/store/blocked-cache.js'
import { StoreUnavailableError } from '../src/store/errors.js'
import { RedisInvalidationBus } from '../src/store/redis/invalidation.js'
import { nodeRedisClientOptions, RedisStore } from '../src/store/redis/store.js'
import { type RedisServer, startRedis } from './helpers/redis-server.js'
import { sleep } from './helpers/sleep.js'
import { CLIENT_KINDS, singleClient } from './helpers/store-clients.js'
import { waitFor } from './resilience/load.js'

const SLOW = 1e-6
const ROOT = fileURLToPath(new URL('..', import.meta.url))
const limits = { b: tokenBucket({ capacity: 5, refillPerSecond: SLOW }) }

describe('RedisStore takes the Redis client the application already has', () => {
  let server: RedisServer
  let admin: Redis

  beforeAll(async () => {
    server = await startRedis()
    admin = new Redis(server.url)
  })
  afterAll(async () => {
    admin.disconnect()
    await server.stop()
  })

  for (const kind of CLIENT_KINDS) {
    it(`${kind}: decides, and its subjects' keys are the same as with any other client`, async () => {
      const made = await singleClient(kind, server.url)
      try {
        const limiter = new Limiter({
          store: new RedisStore({ client: made.client }),
          policy: 'kinds',
          limits,
        })
        const d = await limiter.consume(`by-${kind}`, { requests: 2 })
        expect([d.allowed, d.verified, d.limits[0]!.remaining]).toEqual([true, true, 3])
        expect(await admin.exists(limiter.keysFor(`by-${kind}`).state)).toBe(1)
      } finally {
        await made.close()
      }
    })
  }

  it('ioredis from a second copy of the same version (a duplicate install) is accepted', async () => {
    // A real second copy on disk: its classes are not sluice's (instanceof would refuse it).
    const copy = join(ROOT, 'node_modules/.cache/sluice-test-ioredis-copy/node_modules/ioredis')
    rmSync(copy, { recursive: true, force: true })
    mkdirSync(copy, { recursive: true })
    cpSync(join(ROOT, 'node_modules/ioredis'), copy, { recursive: true })
    try {
      const module = (await import(pathToFileURL(join(copy, 'built/index.js')).href)) as {
        default: { Redis: typeof Redis }
      }
      const OtherRedis = module.default.Redis
      expect(OtherRedis).not.toBe(Redis)
      const client = new OtherRedis(server.url)
      try {
        expect(client instanceof Redis).toBe(false)
        const limiter = new Limiter({ store: new RedisStore({ client }), policy: 'copy', limits })
        expect((await limiter.consume('s')).verified).toBe(true)
      } finally {
        client.disconnect()
      }
    } finally {
      rmSync(join(ROOT, 'node_modules/.cache/sluice-test-ioredis-copy'), { recursive: true, force: true })
    }
  })

  it('refuses what is not a client, naming its kind and never printing its options', () => {
    const secret = 'hunter2-secret'
    const fakes: unknown[] = [
      { options: { host: 'h', password: secret }, status: 'ready' },
      new Map([['password', secret]]),
      `redis://:${secret}@host:6379`,
    ]
    for (const client of fakes) {
      let message = ''
      try {
        new RedisStore({ client: client as never })
      } catch (error) {
        expect(error).toBeInstanceOf(SluiceInputError)
        message = (error as Error).message
      }
      expect(message).toMatch(/client must be an ioredis .* or a node-redis/)
      expect(message).not.toContain(secret)
    }
    // A node-redis 4 client (no typeMapping) is named as such.
    const v4 = { isOpen: true, isReady: true, sendCommand: async () => 'OK', on: () => {} }
    expect(() => new RedisStore({ client: v4 as never })).toThrow(/older than version 5/)
    // URLs are shown with their password masked.
    const urlError = () => new RedisStore({ url: `http://user:${secret}@host:6379` })
    expect(urlError).toThrow(/"http:\/\/user:\*\*\*@host:6379\/"/)
    expect(urlError).not.toThrow(new RegExp(secret))
    const nodesError = () => new RedisStore({ nodes: [`redis://:${secret}@a:1`, 'nope'] })
    expect(nodesError).toThrow(/nodes must be .*"redis:\/\/:\*\*\*@a:1"/)
    expect(nodesError).not.toThrow(new RegExp(secret))
  })

  it('node-redis: a client its owner has not connected fails fast and says so', async () => {
    const client = createClient({ url: server.url, ...nodeRedisClientOptions() })
    const store = new RedisStore({ client })
    const limiter = new Limiter({ store, policy: 'unopened', limits })
    await expect(limiter.consume('s')).rejects.toThrow(/not open .*connect\(\)/)
    await expect(store.whenReady(200)).rejects.toThrow(StoreUnavailableError)
    await client.connect()
    expect((await limiter.consume('s')).verified).toBe(true)
    await client.close()
  })

  it('node-redis: calls fail fast while Redis is down and are never replayed after it is back', async () => {
    const own = await startRedis()
    const probe = new Redis(own.url)
    probe.on('error', () => {})
    const made = await singleClient('node-redis', own.url)
    try {
      const limiter = new Limiter({ store: new RedisStore({ client: made.client }), policy: 'down', limits })
      expect((await limiter.consume('s')).verified).toBe(true)
      await own.kill()
      const client = made.client as { isReady: boolean }
      await waitFor('the client to notice', () => !client.isReady)
      for (let i = 0; i < 3; i++) await expect(limiter.consume('s')).rejects.toThrow(StoreUnavailableError)
      await own.start()
      await waitFor('the client to reconnect', () => client.isReady)
      await sleep(100) // a replayed command, if there were one, would land now
      // The restarted Redis is empty: nothing of what was refused reached it.
      const d = await limiter.peek('s', { requests: 0 })
      expect([d.verified, d.limits[0]!.remaining]).toEqual([true, 5])
    } finally {
      await made.close().catch(() => {})
      probe.disconnect()
      await own.stop()
    }
  })

  for (const kind of CLIENT_KINDS) {
    it(`${kind}: the invalidation bus carries a refund from one instance to another`, async () => {
      const [one, two] = await Promise.all([singleClient(kind, server.url), singleClient(kind, server.url)])
      const caches = [new BlockedKeyCache({ maxAgeMs: 60_000 }), new BlockedKeyCache({ maxAgeMs: 60_000 })]
      const buses = [
        new RedisInvalidationBus({ cache: caches[0]!, client: one.client, channel: `inv-${kind}` }),
        new RedisInvalidationBus({ cache: caches[1]!, client: two.client, channel: `inv-${kind}` }),
      ]
      try {
        await Promise.all(buses.map((b) => b.start(5_000)))
        const [a, b] = [one, two].map(
          (m, i) =>
            new Limiter({
              store: caches[i]!.wrap(new RedisStore({ client: m.client })),
              policy: `bus-${kind.replace(' ', '')}`,
              limits,
            }),
        )
        const r = await b!.reserve('t', { requests: 5 })
        expect((await a!.consume('t')).allowed).toBe(false) // learned by A's cache
        await r.cancel()
        await waitFor('A to hear of the refund', () => buses[0]!.received > 0, 5_000)
        expect((await a!.consume('t')).allowed).toBe(true)
      } finally {
        await Promise.all(buses.map((b) => b.close()))
        await Promise.all([one.close(), two.close()])
      }
    })
  }
})
