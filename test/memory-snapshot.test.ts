import { describe, expect, it } from 'vitest'
import { concurrency, fixedWindow, slidingLog, tokenBucket } from '../src/core/limits.js'
import { Limiter } from '../src/limiter.js'
import { MemoryStore } from '../src/store/memory.js'
import { restoreSnapshot, takeSnapshot } from '../src/store/memory-snapshot.js'

function limiterOn(store: MemoryStore) {
  return new Limiter({
    store,
    policy: 'snap',
    limits: {
      burst: tokenBucket({ capacity: 5, refillPerSecond: 0.001 }),
      daily: fixedWindow({ limit: 10, windowMs: 86_400_000, unit: 'usd' }),
      log: slidingLog({ limit: 4, windowMs: 3_600_000 }),
      inflight: concurrency({ limit: 2, leaseMs: 600_000 }),
    },
    block: false,
  })
}

describe('memory store snapshots', () => {
  it('carry every count into a new store through JSON, but not the leases of calls that ended with the process', async () => {
    const before = new MemoryStore()
    const a = limiterOn(before)
    for (let i = 0; i < 3; i++) await a.consume('key:x', { usd: 2.5, concurrent: 0 })
    const held = await a.reserve('key:x', { usd: 0, concurrent: 1 })
    expect(held.allowed).toBe(true)
    const text = JSON.stringify(takeSnapshot(before))

    const after = new MemoryStore()
    expect(restoreSnapshot(after, JSON.parse(text))).toBeGreaterThan(0)
    const d = await limiterOn(after).peek('key:x', { requests: 0, usd: 0, concurrent: 0 })
    const left = Object.fromEntries(d.limits.map((l) => [l.name, l.remaining]))
    expect(left).toEqual({ burst: 1, daily: 2.5, log: 0, inflight: 2 })
    await before.close()
    await after.close()
  })

  it('drops entries that expired meanwhile and refuses a file of another kind', () => {
    const store = new MemoryStore()
    const past = Date.now() - 1000
    expect(restoreSnapshot(store, { version: 1, takenAt: past, entries: [['k', [past, 1]]] })).toBe(0)
    expect(() => restoreSnapshot(store, { version: 9, takenAt: 0, entries: [] })).toThrow(/version 1/)
    void store.close()
  })
})
