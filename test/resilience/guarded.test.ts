import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  concurrency,
  fixedWindow,
  Limiter,
  MemoryStore,
  SluiceInputError,
  slidingLog,
  tokenBucket,
} from '../../src/index.js'
import { StoreUnavailableError } from '../../src/store/errors.js'
import { GuardedStore, scaleLimit } from '../../src/store/guarded.js'
import { RedisStore, redisClientOptions } from '../../src/store/redis/store.js'
import { type RedisServer, startRedis } from '../helpers/redis-server.js'
import { waitFor } from './load.js'

const SLOW = 1e-6

describe('GuardedStore options and local limits', () => {
  it('refuses bad options, naming them', () => {
    const store = new MemoryStore()
    expect(() => new GuardedStore({ store, failMode: 'maybe' as never })).toThrow(/failMode.*"maybe"/)
    expect(() => new GuardedStore({ store } as never)).toThrow(SluiceInputError)
    expect(() => new GuardedStore({ store, failMode: 'open', timeoutMs: 0 })).toThrow(/timeoutMs.*0/)
    expect(() => new GuardedStore({ store, failMode: 'open', instances: 1.5 })).toThrow(/instances/)
    expect(() => new GuardedStore({ store: {} as never, failMode: 'open' })).toThrow(/store/)
    expect(() => new GuardedStore({ store, failMode: 'open' }).withFailMode('x' as never)).toThrow(/failMode/)
  })

  it('divides each limit among the instances, never below one lease', () => {
    expect(scaleLimit(tokenBucket({ capacity: 100, refillPerSecond: 10 }), 4)).toMatchObject({
      capacity: 25,
      refillPerSecond: 2.5,
      intervalMs: 400,
    })
    expect(scaleLimit(fixedWindow({ limit: 20, windowMs: 1000 }), 3)).toMatchObject({ limit: 20 / 3 })
    expect(scaleLimit(slidingLog({ limit: 9, windowMs: 1000 }), 3)).toMatchObject({ limit: 3 })
    expect(scaleLimit(concurrency({ limit: 10 }), 4)).toMatchObject({ limit: 2 })
    expect(scaleLimit(concurrency({ limit: 2 }), 4)).toMatchObject({ limit: 1 })
  })
})

describe('GuardedStore while Redis is down', () => {
  let server: RedisServer
  let client: Redis
  let guard: GuardedStore

  beforeAll(async () => {
    server = await startRedis()
    client = new Redis(server.url, redisClientOptions())
    client.on('error', () => {})
    const store = new RedisStore({ client })
    await store.whenReady()
    guard = new GuardedStore({ store, failMode: 'open', timeoutMs: 100 })
  })
  afterAll(async () => {
    client.disconnect()
    await server.stop()
  })

  it('views share one breaker; each answers by its own policy; admin ops need the store', async () => {
    const limits = { b: tokenBucket({ capacity: 10, refillPerSecond: SLOW }) }
    const open = new Limiter({ store: guard, policy: 'g-open', limits })
    const closed = new Limiter({ store: guard.withFailMode('closed'), policy: 'g-closed', limits })

    const early = await open.reserve('r1') // charged in Redis
    expect(early.decision.verified).toBe(true)

    await server.kill()
    await waitFor('the breaker to open', () => {
      open.consume('x').catch(() => {})
      return guard.state === 'down'
    })
    expect(guard.withFailMode('local').state).toBe('down')
    expect(guard.health().lastError).toBeTruthy()

    const d = await open.consume('u')
    expect([d.allowed, d.verified, d.fallback]).toEqual([true, false, 'open'])
    await expect(closed.consume('u')).rejects.toBeInstanceOf(StoreUnavailableError)
    await expect(open.reset('u')).rejects.toBeInstanceOf(StoreUnavailableError)
    await expect(open.unblock('u')).rejects.toThrow(/unavailable/)
    const late = await open.reserve('r2') // charged nowhere
    expect(late.decision.fallback).toBe('open')
    // Settling the Redis-charged reservation now cannot reach Redis: unverified, nothing applied.
    expect((await early.settle({ requests: 0 })).verified).toBe(false)

    await server.start()
    await waitFor('the store back up', () => guard.state === 'up')
    expect(guard.health().lastError).toBeUndefined()
    // The reservation made while Redis was down charged nothing, so its settle refunds nothing.
    expect((await late.cancel()).fallback).toBe('open')
    const state = await open.peek('r2', { requests: 0 })
    expect(state.verified).toBe(true)
    expect(state.limits[0]!.remaining).toBe(10)
    expect((await closed.consume('u')).verified).toBe(true)
  })
})
