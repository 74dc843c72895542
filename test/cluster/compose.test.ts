import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { compose, fixedWindow, Limiter, SluiceInputError } from '../../src/index.js'
import type { StoreUnderTest } from '../helpers/store-harness.js'
import { clusterHarness } from './harness.js'

// On Redis Cluster one script touches one slot: a composed decision needs its levels in one.
describe('compose() on Redis Cluster', () => {
  const harness = clusterHarness()
  let s: StoreUnderTest
  beforeAll(async () => {
    await harness.start()
    s = await harness.create()
  })
  afterAll(() => harness.stop())

  const levels = (hashTag?: string) => {
    const keys = new Limiter({
      store: s.store,
      policy: 'key',
      limits: { r: fixedWindow({ limit: 5, windowMs: 60_000 }) },
    })
    const teams = new Limiter({
      store: s.store,
      policy: 'team',
      limits: { r: fixedWindow({ limit: 5, windowMs: 60_000 }) },
    })
    // Subjects whose own tags fall in different slots ({key:k-1} and {team:research}).
    return compose(
      [
        { limiter: keys, subject: 'k-1' },
        { limiter: teams, subject: 'research' },
      ],
      hashTag === undefined ? {} : { hashTag },
    )
  }

  it('levels in different slots are refused, naming the hashTag option; with one they are decided', async () => {
    await expect(levels().consume()).rejects.toThrow(SluiceInputError)
    await expect(levels().consume()).rejects.toThrow(/hashTag/)
    const d = await levels('team:research').consume()
    expect(d.allowed).toBe(true)
    expect(d.levels.map((l) => l.limits[0]!.remaining)).toEqual([4, 4])
  })
})
