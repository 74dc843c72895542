import { describe, expect, it } from 'vitest'
import { concurrency, fixedWindow, slidingLog, slidingWindow, tokenBucket } from '../src/core/limits.js'
import { Limiter } from '../src/limiter.js'
import { MemoryStore } from '../src/store/memory.js'

describe('MemoryStore keeps its memory bounded', () => {
  it('sweeps keys whose state is full again', async () => {
    let now = 1_700_000_000_000
    const store = new MemoryStore({ now: () => now })
    const limiter = new Limiter({
      store,
      policy: 'sweep',
      limits: { b: tokenBucket({ capacity: 10, refillPerSecond: 10 }) },
    })
    for (let i = 0; i < 5_000; i++) await limiter.consume(`ip:${i}`)
    expect(store.size).toBe(5_000)
    now += 100 // one unit refilled: every bucket is full again
    store.sweep(10_000)
    expect(store.size).toBe(0)
    await store.close()
  })

  it('at maxKeys, sweeps expired keys first, then evicts the key closest to expiry', async () => {
    let now = 1_700_000_000_000
    const store = new MemoryStore({ now: () => now, maxKeys: 100 })
    const shortLived = new Limiter({
      store,
      policy: 's',
      limits: { w: fixedWindow({ limit: 5, windowMs: 1_000 }) },
    })
    const longLived = new Limiter({
      store,
      policy: 'l',
      limits: { w: fixedWindow({ limit: 5, windowMs: 3_600_000 }) },
    })
    for (let i = 0; i < 50; i++) await longLived.consume(`u${i}`)
    for (let i = 0; i < 50; i++) await shortLived.consume(`u${i}`)
    expect(store.size).toBe(100)
    now += 1_000 // the short windows closed
    await longLived.consume('new-1')
    expect(store.size).toBeLessThanOrEqual(100)
    expect(store.evictions).toBe(0) // room came from expired keys
    for (let i = 0; i < 60; i++) await longLived.consume(`more-${i}`)
    expect(store.size).toBe(100)
    expect(store.evictions).toBeGreaterThan(0)
    // the newest subjects are kept
    expect((await longLived.peek('more-59', { requests: 0 })).limits[0]!.remaining).toBe(4)
    await store.close()
  })

  it('stays within its byte budget however many subjects come, evicting the oldest', async () => {
    let now = 1_700_000_000_000
    const maxBytes = 100_000
    const store = new MemoryStore({ now: () => now, maxBytes })
    const limiter = new Limiter({
      store,
      policy: 'budget',
      limits: {
        hourly: slidingWindow({ limit: 20, windowMs: 3_600_000 }),
        tokens: tokenBucket({ capacity: 10_000, refillPerSecond: 10_000 / 3600, unit: 'tokens' }),
        log: slidingLog({ limit: 50, windowMs: 3_600_000 }),
        inflight: concurrency({ limit: 4, leaseMs: 600_000 }),
      },
      alertAt: 0.5,
      block: { after: 2, withinMs: 60_000 },
    })
    let most = 0
    const held = []
    for (let i = 0; i < 5_000; i++) {
      const subject = `user-${i}`
      const r = await limiter.reserve(subject, { tokens: 6_000 }) // crosses the alert threshold
      // Every third call stays in flight (its lease and log entry are kept); every seventh subject
      // is denied three times (strikes, then a block).
      if (i % 3 === 0) held.push(r)
      else await r.settle({ tokens: 100 })
      if (i % 7 === 0) for (let k = 0; k < 3; k++) await limiter.consume(subject, { tokens: 9_000 })
      most = Math.max(most, store.bytes)
      now += 1
    }
    expect(most).toBeLessThanOrEqual(maxBytes)
    expect(store.bytes).toBeGreaterThan(maxBytes / 2)
    expect(store.evictions).toBeGreaterThan(0)
    expect(store.size).toBeLessThan(5_000)
    // The newest subject is still there; the first one was evicted and starts afresh.
    expect((await limiter.peek('user-4999', { requests: 0, concurrent: 0 })).limits[1]!.remaining).toBe(9_900)
    expect((await limiter.peek('user-0', { requests: 0, concurrent: 0 })).limits[1]!.remaining).toBe(10_000)
    for (const r of held.slice(-10)) await r.cancel()
    await store.close()
  })

  it('accounts every entry it drops: the estimate returns to 0 when everything expired', async () => {
    let now = 1_700_000_000_000
    const store = new MemoryStore({ now: () => now })
    const limiter = new Limiter({
      store,
      policy: 'drift',
      limits: {
        w: fixedWindow({ limit: 3, windowMs: 1_000 }),
        b: tokenBucket({ capacity: 3, refillPerSecond: 3 }),
        log: slidingLog({ limit: 3, windowMs: 1_000 }),
        c: concurrency({ limit: 2, leaseMs: 1_000 }),
      },
      alertAt: 0.5,
      block: { after: 2, withinMs: 1_000, durationsMs: [1_000], forgetMs: 1_000 },
    })
    for (let i = 0; i < 300; i++) {
      const subject = `s${i % 40}`
      const r = await limiter.reserve(subject)
      if (i % 4 === 0) await r.cancel()
      else if (i % 4 === 1) await r.settle({ requests: 2 })
      if (i % 9 === 0) await limiter.reset(subject)
      if (i % 11 === 0) await limiter.unblock(subject)
      now += 3
    }
    expect(store.bytes).toBeGreaterThan(0)
    now += 10_000 // every window, bucket, lease, log entry, strike, block and alert is over
    store.sweep(1_000_000)
    expect(store.size).toBe(0)
    expect(store.bytes).toBe(0)
    await store.close()
  })

  it('rejects a bad maxBytes or maxKeys by name', () => {
    expect(() => new MemoryStore({ maxBytes: 0 })).toThrow(/maxBytes/)
    expect(() => new MemoryStore({ maxBytes: 1.5 })).toThrow(/maxBytes/)
    expect(() => new MemoryStore({ maxKeys: 0 })).toThrow(/maxKeys/)
    expect(() => new MemoryStore({ sweepIntervalMs: -1 })).toThrow(/sweepIntervalMs/)
  })
})
