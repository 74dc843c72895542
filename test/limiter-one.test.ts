import { describe, expect, it } from 'vitest'
import {
  calendar,
  fixedWindow,
  type LimitDefinition,
  slidingWindow,
  tokenBucket,
} from '../src/core/limits.js'
// The mock upstream's seeded generator (mulberry32): a failing sequence can be run again.
import { prng as random } from '../src/gateway/mock/generate.js'
import { type Costs, Limiter, type Reservation } from '../src/limiter.js'
import { MemoryStore } from '../src/store/memory.js'
import { Boxed, type Layout, Mixed } from '../src/store/memory-layout.js'
import { callOutcome, randomLimiterCall } from './helpers/random-limiter-call.js'

/**
 * A policy of one limit on a MemoryStore, without alerts or blocks, decides consume, consumeSync
 * and peek without an op (src/limiter-one.ts, MemoryStore.decideOne). Here it is held to the two
 * other paths the same calls can take — the in-place path of any policy (decideInPlace, the store
 * offering no one-limit layout) and the general path (check() and Steps) — over long random
 * sequences of calls, costs (bad ones too), settlements, resets and clock steps: every decision,
 * its fields in the same order, every error, every stored entry and the store's bytes the same.
 */

/** The in-place path of any policy: the store offers no one-limit layout. */
class InPlaceStore extends MemoryStore {
  override oneLimitLayout(): Layout | undefined {
    return undefined
  }
}

/** The general path: in-place decisions off (so no one-limit layout either). */
class GeneralPathStore extends MemoryStore {
  protected override readonly inPlace = false
}

/** A MemoryStore counting its one-limit decisions. */
class CountingStore extends MemoryStore {
  calls = 0
  override decideOne(...args: Parameters<MemoryStore['decideOne']>) {
    this.calls++
    return super.decideOne(...args)
  }
}

function entriesOf(store: MemoryStore): [string, unknown][] {
  const out: [string, unknown][] = []
  store.forEachEntry((key, slot) => {
    if (slot instanceof Boxed) out.push([key, { boxed: slot.value, expiresAt: slot.expiresAt }])
    else if (slot instanceof Mixed) out.push([key, { nums: [...slot.nums], extra: slot.extra }])
    else out.push([key, [...slot]])
  })
  return out.sort((x, y) => (x[0] < y[0] ? -1 : 1))
}

/** A cost that is often 1, sometimes 0, fractional, large, more than the limit, or not a cost. */
function amount(r: () => number, scale: number): number {
  const x = r()
  if (x < 0.3) return 1
  if (x < 0.4) return 0
  if (x < 0.6) return Math.round(r() * scale * 100) / 100
  if (x < 0.9) return Math.ceil(r() * scale)
  if (x < 0.96) return scale * 50
  return r() < 0.5 ? Number.NaN : -1
}

/** No costs, the limit's unit, another unit too, only another unit, or an unknown one. */
function costsOf(r: () => number, unit: string, scale: number): Costs | undefined {
  const x = r()
  if (x < 0.3) return undefined
  if (x < 0.7) return { [unit]: amount(r, scale) }
  if (x < 0.85) return { tokens: amount(r, 100), [unit]: amount(r, scale) }
  if (x < 0.97) return { usd: amount(r, 1) }
  return { bogus: 1 } as Costs
}

const LIMITS: [string, LimitDefinition, string, number][] = [
  ['bucket', tokenBucket({ capacity: 5, refillPerSecond: 2 }), 'requests', 3],
  ['tokens', tokenBucket({ capacity: 1e12, refillPerSecond: 1e6, unit: 'tokens' }), 'tokens', 3e11],
  ['fixed', fixedWindow({ limit: 6, windowMs: 1_000 }), 'requests', 3],
  ['sliding', slidingWindow({ limit: 7, windowMs: 2_000 }) as LimitDefinition, 'requests', 3],
  ['spend', calendar({ limit: 5, period: 'day', unit: 'usd' }), 'usd', 2],
]

async function compare(name: string, limit: LimitDefinition, unit: string, scale: number, seed: number) {
  const r = random(seed)
  let now = Date.UTC(2026, 0, 30, 23, 59, 58, 500)
  const clock = () => now
  const stores = [
    new CountingStore({ now: clock }),
    new InPlaceStore({ now: clock }),
    new GeneralPathStore({ now: clock }),
  ] as const
  const limiters = stores.map((store) => new Limiter({ store, policy: name, limits: { [name]: limit } }))
  const held = stores.map(() => new Map<string, Reservation>())
  // A bad subject now and then: the same error on every path (a bad cost's first).
  const subjects = ['a', 'b', 'c', 'a', 'b', '']
  try {
    for (let i = 0; i < 1_200; i++) {
      const subject = subjects[Math.floor(r() * subjects.length)]!
      // ttlMs deletes an expired key: asked of every store alike.
      const state = subject === '' ? undefined : limiters[0]!.keysFor(subject).state
      const ttls = stores.map((store) => (state === undefined ? undefined : store.ttlMs(state)))
      expect(new Set(ttls).size).toBe(1)
      const ttlMs = ttls[0]
      const x = r()
      if (x < 0.1 && ttlMs !== undefined) now += ttlMs
      else if (x < 0.4) now += 0
      else if (x < 0.8) now += Math.floor(r() * 500)
      else if (x < 0.97) now += Math.floor(r() * 5_000)
      else now -= Math.floor(r() * 50)
      const call = randomLimiterCall(r, subject, () => costsOf(r, unit, scale))
      const outcomes = []
      for (let k = 0; k < 3; k++) outcomes.push(await callOutcome(call, limiters[k]!, held[k]!))
      const where = `${name}, seed ${seed}, call ${i}`
      expect(outcomes[0], where).toStrictEqual(outcomes[2])
      expect(outcomes[1], where).toStrictEqual(outcomes[2])
      const entries = entriesOf(stores[2])
      expect(entriesOf(stores[0]), where).toStrictEqual(entries)
      expect(entriesOf(stores[1]), where).toStrictEqual(entries)
      expect([stores[0].bytes, stores[1].bytes, stores[0].size], where).toStrictEqual([
        stores[2].bytes,
        stores[2].bytes,
        stores[2].size,
      ])
    }
    // The sequences above went through the one-limit path (and it is not only the fallback).
    expect(stores[0].calls).toBeGreaterThan(500)
  } finally {
    for (const store of stores) await store.close()
  }
}

describe('Limiter: one limit on a MemoryStore', () => {
  for (const [name, limit, unit, scale] of LIMITS) {
    it(`${name}: the same decisions, errors and state as the in-place and general paths`, async () => {
      for (const seed of [11, 12, 13]) await compare(name, limit, unit, scale, seed)
    })
  }

  it('takes the one-limit path only for one limit without alerts or blocks', () => {
    const one = { b: tokenBucket({ capacity: 5, refillPerSecond: 1 }) }
    const cases: [Partial<ConstructorParameters<typeof Limiter>[0]>, number][] = [
      [{ limits: one }, 3],
      [{ limits: one, alertAt: 0.8 }, 0],
      [{ limits: one, block: true }, 0],
      [{ limits: { ...one, c: fixedWindow({ limit: 3, windowMs: 1_000 }) } }, 0],
    ]
    for (const [options, calls] of cases) {
      const store = new CountingStore()
      const limiter = new Limiter({ store, policy: 'p', limits: one, ...options })
      limiter.consumeSync('x')
      void limiter.consume('x')
      void limiter.peek('x')
      void limiter.reserve('x')
      expect(store.calls, JSON.stringify(options)).toBe(calls)
    }
  })

  it('leaves a key holding other numbers to the general path', async () => {
    const clock = () => 1_000_000
    const limits = { b: tokenBucket({ capacity: 5, refillPerSecond: 1 }) }
    const stores = [new CountingStore({ now: clock }), new GeneralPathStore({ now: clock })] as const
    const decisions = []
    for (const store of stores) {
      const limiter = new Limiter({ store, policy: 'p', limits })
      const stateKey = limiter.keysFor('x').state
      // A hand-made op of another layout (two buckets) under the same key: numbers of another length.
      const other = [limits.b, tokenBucket({ capacity: 9, refillPerSecond: 1 })]
      const op = { mode: 'consume' as const, id: '-', stateKey, keys: ['k1', 'k2'], names: ['b', 'c'] }
      store.executeSync({ ...op, limits: other, costs: [2, 3] })
      decisions.push(limiter.consumeSync('x'), await limiter.consume('x'), await limiter.peek('x'))
    }
    expect(decisions.slice(0, 3)).toStrictEqual(decisions.slice(3))
    expect(stores[0].calls).toBe(3)
  })
})
