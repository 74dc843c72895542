import { describe, expect, it } from 'vitest'
import { fixedWindow, tokenBucket } from '../src/core/limits.js'
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

  it('rejects a bad maxKeys by name', () => {
    expect(() => new MemoryStore({ maxKeys: 0 })).toThrow(/maxKeys/)
    expect(() => new MemoryStore({ sweepIntervalMs: -1 })).toThrow(/sweepIntervalMs/)
  })
})
