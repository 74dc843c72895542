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
import type { Store, StoreOp, StoreResult } from '../../src/store/types.js'
import { type RedisServer, startRedis } from '../helpers/redis-server.js'
import { sleep } from '../helpers/sleep.js'
import { CountingStore } from '../helpers/store-harness.js'
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
    // Not shorter: the first call after Redis (re)starts loads sluice's library, and on a loaded
    // machine that took over 100 ms (seen), so the call fell back where the test wants Redis.
    guard = new GuardedStore({ store, failMode: 'open', timeoutMs: 1_000 })
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

  it('settling any number of reservations a fallback answered never reaches the store', async () => {
    const counting = new CountingStore(new RedisStore({ client }))
    const many = new GuardedStore({ store: counting, failMode: 'open', timeoutMs: 1_000 })
    const limits = { b: tokenBucket({ capacity: 10, refillPerSecond: SLOW }), c: concurrency({ limit: 2 }) }
    const open = new Limiter({ store: many, policy: 'g-many-open', limits })
    const local = new Limiter({ store: many.withFailMode('local'), policy: 'g-many-local', limits })

    await server.kill()
    await waitFor('the breaker to open', () => {
      open.consume('x').catch(() => {})
      return many.state === 'down'
    })
    // More reservations than any bounded memory of them would hold.
    const reservations = []
    for (let i = 0; i < 120_000; i++) reservations.push(await open.reserve(`o${i % 50}`))
    const held = await local.reserve('l')
    expect(held.decision.fallback).toBe('local')
    await server.start()
    await waitFor('the store back up', () => many.state === 'up')

    const before = counting.count
    for (const r of reservations.slice(0, 1_000))
      expect((await r.settle({ requests: 5 })).fallback).toBe('open')
    expect((await held.cancel()).fallback).toBe('local')
    expect(counting.count).toBe(before)
    // Redis saw none of it: every subject is full there.
    const peek = await open.peek('o0', { requests: 0, concurrent: 0 })
    expect([peek.verified, peek.limits[0]!.remaining, peek.limits[1]!.remaining]).toEqual([true, 10, 2])
    expect((await local.peek('l', { requests: 0, concurrent: 0 })).limits[1]!.remaining).toBe(2)
  })

  it('a late charge whose refund fails is counted and logged once per run of failures', async () => {
    // Redis answers every call 60 ms late (past the 20 ms deadline); refunds can be made to fail.
    const slow = new SlowStore(new RedisStore({ client }), 60)
    const logs: string[] = []
    const outcomes: string[] = []
    const late = new GuardedStore({
      store: slow,
      failMode: 'open',
      timeoutMs: 20,
      refundTimeoutMs: 200,
      failureThreshold: 1_000,
      logger: { warn: (_, m) => logs.push(`warn ${m}`), info: (_, m) => logs.push(`info ${m}`) },
    })
    late.observe({ lateRefund: (o) => outcomes.push(o) })
    const limits = { b: tokenBucket({ capacity: 100, refillPerSecond: SLOW }) }
    const limiter = new Limiter({ store: late, policy: 'g-refund-fails', limits })

    slow.refunds = 'fail'
    for (let i = 0; i < 4; i++) expect((await limiter.consume('s')).fallback).toBe('open')
    expect(await late.reconciled()).toBe(true)
    slow.refunds = 'hang'
    expect((await limiter.consume('s')).fallback).toBe('open')
    expect(await late.reconciled()).toBe(true)
    expect(outcomes).toEqual(['error', 'error', 'error', 'error', 'timeout'])
    expect(logs).toEqual(['warn store: a charge applied after its call was answered could not be refunded'])

    slow.refunds = 'pass'
    expect((await limiter.consume('s')).fallback).toBe('open')
    expect(await late.reconciled()).toBe(true)
    expect(outcomes.at(-1)).toBe('ok')
    expect(logs.at(-1)).toBe('info store: late charges are refunded again')
    // What could not be refunded stays charged (and was counted); the rest was refunded (the
    // refund that passed its deadline was applied all the same).
    const truth = new Limiter({ store: new RedisStore({ client }), policy: 'g-refund-fails', limits })
    expect((await truth.peek('s', { requests: 0 })).limits[0]!.remaining).toBe(100 - 4)
  })
})

/** A real store behind a slow link: every answer arrives `delayMs` late; refunds can fail or hang. */
class SlowStore implements Store {
  refunds: 'pass' | 'fail' | 'hang' = 'pass'
  constructor(
    private readonly inner: Store,
    private readonly delayMs: number,
  ) {}
  async execute(op: StoreOp): Promise<StoreResult> {
    if (op.mode === 'adjust' && this.refunds === 'fail') throw new Error('connection lost')
    const delay = op.mode === 'adjust' && this.refunds === 'hang' ? 250 : this.delayMs
    const result = await this.inner.execute(op)
    await sleep(delay)
    return result
  }
  ping() {
    return this.inner.ping()
  }
  close() {
    return this.inner.close()
  }
}
