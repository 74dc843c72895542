import { describe, expect, it } from 'vitest'
import { slidingLog, tokenBucket } from '../src/core/limits.js'
import { Limiter } from '../src/limiter.js'
import { MemoryStore } from '../src/store/memory.js'

/**
 * The Limiter remembers where the MemoryStore found a subject's state (a hint, to spare a Map
 * lookup per call). Whatever removed or replaced that state since must make the next call read
 * the store's current state, never the old one.
 */
describe('MemoryStore state hints', () => {
  const bucket = { b: tokenBucket({ capacity: 3, refillPerSecond: 0.001 }) }

  it('reads a fresh state after reset', () => {
    const store = new MemoryStore()
    const limiter = new Limiter({ store, policy: 'p', limits: bucket })
    limiter.consumeSync('a')
    limiter.consumeSync('a')
    void limiter.reset('a')
    expect(limiter.consumeSync('a').limits[0]!.remaining).toBe(2)
  })

  it('reads a fresh state after the subject was evicted', () => {
    const store = new MemoryStore({ maxKeys: 1 })
    const limiter = new Limiter({ store, policy: 'p', limits: bucket })
    limiter.consumeSync('a')
    limiter.consumeSync('a')
    limiter.consumeSync('b') // evicts a
    expect(limiter.consumeSync('a').limits[0]!.remaining).toBe(2)
  })

  it('reads a fresh state after it expired, and after the store was closed', async () => {
    let now = 1_700_000_000_000
    const store = new MemoryStore({ now: () => now })
    const limiter = new Limiter({
      store,
      policy: 'p',
      limits: { b: tokenBucket({ capacity: 3, refillPerSecond: 1 }) },
    })
    limiter.consumeSync('a')
    limiter.consumeSync('a')
    now += 5_000 // full again: the key is gone on the next read
    expect(limiter.consumeSync('a').limits[0]!.remaining).toBe(2)
    limiter.consumeSync('a')
    await store.close()
    expect(limiter.consumeSync('a').limits[0]!.remaining).toBe(2)
  })

  it('sees logs added beside the numbers (the key given another slot)', () => {
    const store = new MemoryStore()
    const limiter = new Limiter({
      store,
      policy: 'p',
      limits: { ...bucket, log: slidingLog({ limit: 2, windowMs: 60_000 }) },
    })
    limiter.consumeSync('a')
    limiter.consumeSync('a')
    const third = limiter.consumeSync('a')
    expect(third.allowed).toBe(false)
    expect(third.deniedBy).toBe('log')
  })

  it("sees a subject's block start, end by unblock, and expire (the block key's hint)", async () => {
    let now = 1_700_000_000_000
    const store = new MemoryStore({ now: () => now })
    const limiter = new Limiter({
      store,
      policy: 'p',
      limits: { b: tokenBucket({ capacity: 1, refillPerSecond: 0.001 }) },
      block: { after: 2, withinMs: 60_000, durationsMs: [10_000] },
    })
    expect(limiter.consumeSync('a').allowed).toBe(true)
    expect(limiter.consumeSync('a').blocked).toBe(false) // first denial, no block key yet
    expect(limiter.consumeSync('a').blockedNow).toBe(true)
    expect(limiter.consumeSync('a').blocked).toBe(true)
    await limiter.unblock('a')
    const after = limiter.consumeSync('a')
    expect(after.blocked).toBe(false)
    expect(after.deniedBy).toBe('b')
    limiter.consumeSync('a') // second denial since the unblock: blocked again
    expect(limiter.consumeSync('a').blocked).toBe(true)
    now += 10_001
    expect(limiter.consumeSync('a').blocked).toBe(false)
  })
})
