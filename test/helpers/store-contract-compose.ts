import { expect, it } from 'vitest'
import {
  compose,
  concurrency,
  fixedWindow,
  Limiter,
  type LimiterOptions,
  SluiceInputError,
  slidingLog,
  slidingWindow,
  tokenBucket,
} from '../../src/index.js'
import type { StoreUnderTest } from './store-harness.js'

const NEGLIGIBLE = 1e-6
let counter = 0

/**
 * compose(): several subjects' limits (a key, its team, a user) decided in one atomic step.
 * Part of the store contract: every store runs it. Levels share a hash tag, as on Redis Cluster.
 */
export function composeContract(store: () => StoreUnderTest): void {
  const limiter = (policy: string, limits: LimiterOptions['limits'], extra: Partial<LimiterOptions> = {}) =>
    new Limiter({ store: store().store, policy: `${policy}-${process.pid}-${++counter}`, limits, ...extra })
  const tagged = () => `team:t${process.pid}-${++counter}`

  it('compose: a refusal by the team charges nothing to the key, and a refusal by the key nothing to the team', async () => {
    const keys = limiter('key', { requests: fixedWindow({ limit: 10, windowMs: 3_600_000 }) })
    const teams = limiter('team', { requests: slidingLog({ limit: 3, windowMs: 3_600_000 }) })
    const hashTag = tagged()
    const levels = (key: string) =>
      compose(
        [
          { limiter: keys, subject: key },
          { limiter: teams, subject: 'research' },
        ],
        { hashTag },
      )
    const ds = []
    for (let i = 0; i < 4; i++) ds.push(await levels('k1').consume())
    expect(ds.map((d) => d.allowed)).toEqual([true, true, true, false])
    const denied = ds[3]!
    expect(denied.deniedLevel).toBe(1)
    expect(denied.deniedBy).toBe('requests')
    expect(denied.retryAfterMs).toBeGreaterThan(0)
    expect(denied.levels[0]!.limits[0]!.allowed).toBe(true)
    // The key paid for the three admitted calls only.
    const key = await levels('k1').peek({ requests: 0 })
    expect(key.levels.map((d) => d.limits[0]!.remaining)).toEqual([7, 0])

    const small = limiter('key', { requests: fixedWindow({ limit: 1, windowMs: 3_600_000 }) })
    const wide = limiter('team', { requests: fixedWindow({ limit: 100, windowMs: 3_600_000 }) })
    const both = compose(
      [
        { limiter: small, subject: 'k2' },
        { limiter: wide, subject: 'research' },
      ],
      { hashTag },
    )
    expect((await both.consume()).allowed).toBe(true)
    const byKey = await both.consume()
    expect(byKey.allowed).toBe(false)
    expect(byKey.deniedLevel).toBe(0)
    expect((await both.peek({ requests: 0 })).levels[1]!.limits[0]!.remaining).toBe(99)
  })

  it('compose: 200 concurrent calls across two keys of one team with a team limit of 50 admit exactly 50', async () => {
    const keys = limiter('key', {
      requests: tokenBucket({ capacity: 1000, refillPerSecond: NEGLIGIBLE }),
      tokens: slidingWindow({ limit: 1_000_000, windowMs: 3_600_000, unit: 'tokens' }),
    })
    const teams = limiter('team', { requests: fixedWindow({ limit: 50, windowMs: 3_600_000 }) })
    const hashTag = tagged()
    const calls = Array.from({ length: 200 }, (_, i) =>
      compose(
        [
          { limiter: keys, subject: `key-${i % 2}` },
          { limiter: teams, subject: 'research' },
        ],
        { hashTag },
      ).consume({ tokens: 10 }),
    )
    const ds = await Promise.all(calls)
    expect(ds.filter((d) => d.allowed).length).toBe(50)
    // What the keys were charged adds up to what the team admitted.
    const state = await Promise.all(
      [0, 1].map((k) =>
        compose(
          [
            { limiter: keys, subject: `key-${k}` },
            { limiter: teams, subject: 'research' },
          ],
          { hashTag },
        ).peek({
          requests: 0,
          tokens: 0,
        }),
      ),
    )
    const keySpent = state.map((d) => 1000 - d.levels[0]!.limits[0]!.remaining)
    expect(keySpent[0]! + keySpent[1]!).toBe(50)
    expect(state.map((d) => 1_000_000 - d.levels[0]!.limits[1]!.remaining).reduce((a, b) => a + b)).toBe(500)
    expect(state[0]!.levels[1]!.limits[0]!.remaining).toBe(0)
  })

  it('compose: reserve, then settle or cancel on every level at once', async () => {
    const keys = limiter('key', {
      tokens: tokenBucket({ capacity: 1000, refillPerSecond: NEGLIGIBLE, unit: 'tokens' }),
    })
    const teams = limiter('team', {
      usd: fixedWindow({ limit: 1, windowMs: 3_600_000, unit: 'usd' }),
      inflight: concurrency({ limit: 1, leaseMs: 60_000 }),
    })
    const users = limiter('user', {
      tokens: slidingLog({ limit: 5000, windowMs: 3_600_000, unit: 'tokens' }),
    })
    const hashTag = tagged()
    const levels = (key: string) =>
      compose(
        [
          { limiter: keys, subject: key },
          { limiter: teams, subject: 'research' },
          { limiter: users, subject: 'alice' },
        ],
        { hashTag },
      )
    const r = await levels('k1').reserve({ tokens: 800, usd: 0.5 })
    expect(r.allowed).toBe(true)
    expect(r.decision.levels.map((d) => d.limits.map((l) => l.remaining))).toEqual([[200], [0.5, 0], [4200]])
    // The team's one call in flight is taken: another key of the team waits, and is charged nothing.
    const other = await levels('k2').reserve({ tokens: 10, usd: 0.01 })
    expect(other.allowed).toBe(false)
    expect(other.decision.deniedLevel).toBe(1)
    expect(other.decision.deniedBy).toBe('inflight')
    const settled = await r.settle({ tokens: 300, usd: 0.75 })
    expect(settled.levels.map((d) => d.limits.map((l) => l.remaining))).toEqual([[700], [0.25, 1], [4700]])
    expect(await r.settle({ tokens: 1 })).toBe(settled)
    await other.settle({ tokens: 5 })
    expect((await levels('k2').peek({ tokens: 0, usd: 0 })).levels[0]!.limits[0]!.remaining).toBe(1000)

    const c = await levels('k2').reserve({ tokens: 100, usd: 0.2 })
    expect(c.allowed).toBe(true)
    const cancelled = await c.cancel()
    expect(cancelled.levels.map((d) => d.limits.map((l) => l.remaining))).toEqual([[1000], [0.25, 1], [4700]])
    // A team budget that is spent refuses every key of the team, and charges none of them.
    const spent = await levels('k2').consume({ tokens: 10, usd: 0.3 })
    expect(spent.allowed).toBe(false)
    expect(spent.deniedLevel).toBe(1)
    expect((await levels('k2').peek({ tokens: 0, usd: 0 })).levels[0]!.limits[0]!.remaining).toBe(1000)
  })

  it('compose: bad levels and costs are refused before any store call, naming the problem', async () => {
    const s = store()
    const before = s.calls()
    const keys = limiter('key', { requests: fixedWindow({ limit: 10, windowMs: 60_000 }) })
    expect(() => compose([])).toThrow(SluiceInputError)
    expect(() => compose([{ limiter: keys, subject: '' }])).toThrow(/subject/)
    expect(() =>
      compose([
        { limiter: keys, subject: 'a' },
        { limiter: keys, subject: 'a' },
      ]),
    ).toThrow(/repeats/)
    expect(() => compose([{ limiter: keys, subject: 'a' }], { hashTag: 'a{b}' })).toThrow(/hashTag/)
    const c = compose([{ limiter: keys, subject: 'a' }])
    await expect(c.consume({ dollars: 1 })).rejects.toThrow(/dollars/)
    await expect(c.consume({ requests: -1 })).rejects.toThrow(SluiceInputError)
    expect(s.calls()).toBe(before)
  })
}
