import { describe, expect, it } from 'vitest'
import { Sluice } from '../src/http/index.js'
import {
  type Decision,
  Limiter,
  MemoryStore,
  SluiceInputError,
  type Store,
  slidingWindow,
  tokenBucket,
} from '../src/index.js'

/** A store that answers like a MemoryStore but only through promises (as RedisStore does). */
function asyncOnly(store: MemoryStore): Store {
  return {
    execute: (op) => Promise.resolve(store.executeSync(op)),
    ping: () => store.ping(),
    close: () => store.close(),
  }
}

const limits = {
  burst: tokenBucket({ capacity: 3, refillPerSecond: 1 }),
  hourly: slidingWindow({ limit: 5, windowMs: 3_600_000 }),
}

describe('consumeSync', () => {
  it('decides exactly as consume does, call for call, without a promise', async () => {
    let now = 1_700_000_000_000
    const clock = () => now
    const a = new Limiter({ store: new MemoryStore({ now: clock }), policy: 'p', limits, block: true })
    const b = new Limiter({ store: new MemoryStore({ now: clock }), policy: 'p', limits, block: true })
    const seen: Decision[] = []
    for (let i = 0; i < 40; i++) {
      const viaPromise = await a.consume('user-1', { requests: 1 })
      const direct = b.consumeSync('user-1', { requests: 1 })
      expect(direct).not.toBeInstanceOf(Promise)
      expect(direct).toEqual(viaPromise)
      seen.push(direct)
      now += 250
    }
    // The sequence went through admissions, denials and a block, so the comparison covered them.
    expect(seen.some((d) => d.allowed)).toBe(true)
    expect(seen.some((d) => !d.allowed && !d.blocked)).toBe(true)
    expect(seen.some((d) => d.blocked)).toBe(true)
  })

  it('keeps every decision and store result as it was made, whatever calls come after', async () => {
    // The limiter reads a result the MemoryStore reuses from call to call: nothing a caller holds
    // may change with the next call, and the same calls through executeSync decide the same.
    let now = 1_700_000_000_000
    const clock = () => now
    const store = new MemoryStore({ now: clock })
    const fast = new Limiter({ store, policy: 'p', limits, block: true, alertAt: 0.5 })
    const plain = new Limiter({
      store: asyncOnly(new MemoryStore({ now: clock })),
      policy: 'p',
      limits,
      block: true,
      alertAt: 0.5,
    })
    const held: { decision: Decision; copy: Decision }[] = []
    for (let i = 0; i < 30; i++) {
      const subject = `user-${i % 3}`
      const costs = { requests: 1 + (i % 2) }
      const decision = i % 4 === 3 ? await fast.peek(subject, costs) : fast.consumeSync(subject, costs)
      const expected = i % 4 === 3 ? await plain.peek(subject, costs) : await plain.consume(subject, costs)
      expect(decision).toEqual(expected)
      held.push({ decision, copy: structuredClone(decision) })
      now += 300
    }
    for (const { decision, copy } of held) expect(decision).toEqual(copy)
    expect(held.some(({ decision }) => decision.alerts.length > 0)).toBe(true)
    expect(held.some(({ decision }) => !decision.allowed)).toBe(true)

    const op = {
      mode: 'consume' as const,
      id: '-',
      stateKey: 'k#x',
      keys: ['k:burst', 'k:hourly'],
      names: fast.names,
      limits: fast.definitions,
      costs: [1, 1],
    }
    const first = store.executeSync(op)
    const snapshot = structuredClone(first)
    fast.consumeSync('user-9')
    store.executeSync(op)
    expect(first).toEqual(snapshot)
  })

  it('refuses a store that cannot decide synchronously, and bad costs, by throwing', () => {
    const remote = new Limiter({ store: asyncOnly(new MemoryStore()), policy: 'remote', limits })
    expect(() => remote.consumeSync('u')).toThrow(SluiceInputError)
    expect(() => remote.consumeSync('u')).toThrow(/consumeSync.*MemoryStore.*consume\(\)/)
    const local = new Limiter({ store: new MemoryStore(), policy: 'local', limits })
    for (const bad of [-1, Number.NaN, Number.POSITIVE_INFINITY, '5', null]) {
      expect(() => local.consumeSync('u', { tokens: bad as number })).toThrow(/costs\.tokens/)
    }
    // Nothing was charged by the refused calls.
    expect(local.consumeSync('u', { tokens: 0 }).limits.map((l) => l.remaining)).toEqual(
      local.consumeSync('fresh', { tokens: 0 }).limits.map((l) => l.remaining),
    )
    expect(() => local.consumeSync('')).toThrow(/subject/)
  })

  it('charges each call its own costs: a unit named once counts for every limit in it, and only that call', () => {
    const now = 1_700_000_000_000
    const l = new Limiter({
      store: new MemoryStore({ now: () => now }),
      policy: 'costs',
      limits: {
        calls: tokenBucket({ capacity: 10, refillPerSecond: 1e-6 }),
        tokensA: tokenBucket({ capacity: 1_000, refillPerSecond: 1e-6, unit: 'tokens' }),
        tokensB: slidingWindow({ limit: 1_000, windowMs: 3_600_000, unit: 'tokens' }),
      },
    })
    const remaining = (d: Decision) => d.limits.map((s) => s.remaining)
    expect(remaining(l.consumeSync('u', { tokens: 300 }))).toEqual([9, 700, 700])
    // A call without tokens after one with them: the default cost (0 tokens, 1 request), not the last call's.
    expect(remaining(l.consumeSync('u', { requests: 2 }))).toEqual([7, 700, 700])
    expect(remaining(l.consumeSync('u'))).toEqual([6, 700, 700])
    // A refused cost leaves nothing behind for the next call either.
    expect(() => l.consumeSync('u', { tokens: 5, usd: -1 })).toThrow(/costs\.usd/)
    expect(remaining(l.consumeSync('u', {}))).toEqual([5, 700, 700])
  })
})

describe('Sluice.checkNow', () => {
  const tiers = {
    anonymous: {
      scope: 'ip' as const,
      limits: { burst: tokenBucket({ capacity: 2, refillPerSecond: 0.001 }) },
    },
    authenticated: {
      scope: 'user' as const,
      limits: { burst: tokenBucket({ capacity: 2, refillPerSecond: 0.001 }) },
    },
  }
  const req = { method: 'GET', url: '/', headers: {}, remoteAddress: '203.0.113.9' }

  it('answers at once with a MemoryStore, with what check() answers', async () => {
    const clock = () => 1_700_000_000_000
    const now = new Sluice({ logger: false, tiers, store: new MemoryStore({ now: clock }) })
    const later = new Sluice({ logger: false, tiers, store: new MemoryStore({ now: clock }) })
    for (let i = 0; i < 3; i++) {
      const direct = now.checkNow(req)
      expect(direct).not.toBeInstanceOf(Promise)
      const viaPromise = await later.check(req)
      const { state: s1, ...r1 } = direct as Awaited<ReturnType<typeof now.check>>
      const { state: s2, ...r2 } = viaPromise
      expect(r1).toEqual(r2)
      expect(s1.level).toBe(s2.level)
      expect(s1.identity?.subject).toBe('ip:203.0.113.9')
    }
    expect((now.checkNow(req) as { status: number }).status).toBe(429)
  })

  it('answers with a promise when a step is asynchronous (authenticate, the store)', async () => {
    const auth = new Sluice({ logger: false, tiers, authenticate: async () => 'ann' })
    const pending = auth.checkNow(req)
    expect(pending).toBeInstanceOf(Promise)
    expect((await pending).state.identity?.subject).toBe('user:ann')

    const remote = new Sluice({ logger: false, tiers, store: asyncOnly(new MemoryStore()) })
    const viaStore = remote.checkNow(req)
    expect(viaStore).toBeInstanceOf(Promise)
    expect((await viaStore).proceed).toBe(true)
  })
})
