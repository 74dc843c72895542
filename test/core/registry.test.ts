import { existsSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { ALGORITHMS, algorithmOf, algorithms } from '../../src/core/algorithms/index.js'
import { parseConfig } from '../../src/gateway/config/load.js'
import { Limiter, MemoryStore, SluiceInputError } from '../../src/index.js'
import { scaleLimit } from '../../src/store/fallback.js'
import { encodeBatch } from '../../src/store/redis/encode.js'
import type { StoreOp } from '../../src/store/types.js'

describe('the algorithm registry', () => {
  it('files every algorithm under its own kind, each with its Lua part on disk', () => {
    for (const [kind, algorithm] of Object.entries(ALGORITHMS)) {
      expect(algorithm.kind).toBe(kind)
      expect(
        existsSync(new URL(`../../src/store/redis/lua/${algorithm.lua.file}`, import.meta.url)),
        kind,
      ).toBe(true)
    }
    expect(new Set(algorithms().map((a) => a.lua.file)).size).toBe(algorithms().length)
  })

  it('an unknown kind is an error everywhere, never a silent default', () => {
    expect(() => algorithmOf('leakyBucket')).toThrow(/unknown limit kind "leakyBucket" \(known: tokenBucket/)
    const store = new MemoryStore()
    expect(
      () => new Limiter({ store, policy: 'p', limits: { x: { kind: 'leakyBucket', limit: 1 } as never } }),
    ).toThrow(/limits\.x has unknown kind "leakyBucket"/)
    const op = {
      mode: 'consume',
      id: '1',
      stateKey: 's',
      keys: ['k'],
      names: ['x'],
      limits: [{ kind: 'leakyBucket', unit: 'requests', limit: 1 }],
      costs: [1],
    } as unknown as StoreOp
    expect(() => store.executeSync(op)).toThrow(SluiceInputError)
    expect(() => encodeBatch([op])).toThrow(/unknown limit kind/)
    expect(() => scaleLimit(op.limits[0]!, 2)).toThrow(/unknown limit kind/)
    expect(() =>
      parseConfig({ tiers: { service: { limits: { x: { kind: 'leakyBucket', limit: 1 } } } } }),
    ).toThrow(/tiers\.service\.limits\.x\.kind/)
  })

  it("sluice.yaml speaks every registered kind, through the algorithm's own schema", () => {
    const examples: Record<string, object> = {
      tokenBucket: { capacity: 10, per: '1m' },
      fixedWindow: { limit: 10, window: '1h' },
      slidingWindow: { limit: 10, window: '1h' },
      slidingLog: { limit: 10, window: '1h' },
      concurrency: { limit: 2 },
      calendar: { limit: 5, period: 'day' },
    }
    expect(Object.keys(examples).sort()).toEqual(Object.keys(ALGORITHMS).sort())
    for (const [kind, fields] of Object.entries(examples)) {
      const config = parseConfig({ tiers: { service: { limits: { x: { kind, ...fields } } } } })
      expect(config.tiers.service!.limits.x).toMatchObject({ kind })
    }
  })
})
