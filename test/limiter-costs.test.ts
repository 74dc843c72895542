import { describe, expect, it } from 'vitest'
import { describe as describeValue, requireCost, SluiceInputError } from '../src/core/errors.js'
import { calendar, fixedWindow, slidingWindow, tokenBucket } from '../src/core/limits.js'
// The mock upstream's seeded generator (mulberry32): a failing sequence can be run again.
import { prng as random } from '../src/gateway/mock/generate.js'
import { type Costs, Limiter } from '../src/limiter.js'
import { MemoryStore } from '../src/store/memory.js'

/**
 * A call's per-limit costs are read through the units the last call named, in their order
 * (src/limiter-costs.ts): here that is held to the plain reading — every given unit matched to
 * every limit's — over random sequences of Costs objects that keep, reorder, drop and add units,
 * with bad units and bad values among them.
 */

const policy = {
  policy: 'costs',
  limits: {
    hourly: slidingWindow({ limit: 100, windowMs: 3_600_000 }),
    tokens: tokenBucket({ capacity: 1_000, refillPerSecond: 10, unit: 'tokens' }),
    burst: tokenBucket({ capacity: 10, refillPerSecond: 1 }),
    spend: calendar({ limit: 5, period: 'day', unit: 'usd' }),
    minute: fixedWindow({ limit: 50, windowMs: 60_000, unit: 'tokens' }),
  },
  units: ['images'],
}

const LIMIT_UNITS = ['requests', 'tokens', 'requests', 'usd', 'tokens']
const KNOWN = new Set(['requests', 'tokens', 'usd', 'concurrent', 'images'])

/** The per-limit costs as matched unit by unit, or the error they make. */
function reference(costs: Record<string, unknown>): number[] | string {
  try {
    const perLimit: number[] = LIMIT_UNITS.map((u) => (u === 'requests' || u === 'concurrent' ? 1 : 0))
    for (const unit in costs) {
      const value = costs[unit]
      let counted = false
      for (let i = 0; i < LIMIT_UNITS.length; i++) {
        if (LIMIT_UNITS[i] === unit) {
          perLimit[i] = value as number
          counted = true
        }
      }
      if (!counted && !KNOWN.has(unit)) {
        throw new SluiceInputError(
          `unknown unit ${describeValue(unit)} in costs for policy "costs" (known: ${[...KNOWN].join(', ')})`,
        )
      }
      requireCost(value, `costs.${unit}`)
      if (unit === 'concurrent' && value !== 0 && value !== 1) {
        throw new SluiceInputError(`costs.concurrent must be 0 or 1, got ${describeValue(value)}`)
      }
    }
    return perLimit
  } catch (error) {
    return String(error)
  }
}

function read(limiter: Limiter, costs: Record<string, unknown>, into?: number[]): number[] | string {
  try {
    return [...limiter.costsFor(costs as Costs, into)]
  } catch (error) {
    return String(error)
  }
}

const UNITS = ['requests', 'tokens', 'usd', 'concurrent', 'images', 'bogus']

/** A random Costs: often the last one's units again (maybe reordered), else a new pick. */
function randomCosts(r: () => number, last: string[]): { costs: Record<string, unknown>; units: string[] } {
  let units: string[]
  const x = r()
  if (x < 0.5) units = last
  else if (x < 0.6) units = [...last].reverse()
  else if (x < 0.7) units = last.slice(0, Math.floor(r() * (last.length + 1)))
  else if (x < 0.8) units = [...last, UNITS[Math.floor(r() * UNITS.length)]!]
  else units = UNITS.filter(() => r() < 0.4).sort(() => r() - 0.5)
  units = [...new Set(units)]
  const costs: Record<string, unknown> = {}
  for (const unit of units) {
    const y = r()
    costs[unit] =
      y < 0.8
        ? unit === 'concurrent'
          ? Math.floor(r() * 2)
          : Math.round(r() * 500) / 4
        : y < 0.85
          ? -1
          : y < 0.9
            ? Number.NaN
            : y < 0.95
              ? 2
              : '3'
  }
  return { costs, units }
}

describe('per-limit costs', () => {
  it('are those of matching every unit to every limit, whatever the order and mix of calls', () => {
    for (const seed of [1, 2, 3]) {
      const r = random(seed)
      const limiter = new Limiter({ store: new MemoryStore(), ...policy })
      const into: number[] = []
      let last: string[] = ['requests', 'tokens']
      for (let i = 0; i < 3_000; i++) {
        const { costs, units } = randomCosts(r, last)
        last = units
        const expected = reference(costs)
        expect(read(limiter, costs, r() < 0.5 ? into : undefined), `seed ${seed}, call ${i}`).toEqual(
          expected,
        )
      }
    }
  })

  it('read each unit once, inherited enumerable units included', () => {
    const limiter = new Limiter({ store: new MemoryStore(), ...policy })
    let reads = 0
    const costs = Object.create(
      { usd: 0.5 },
      {
        tokens: {
          enumerable: true,
          get: () => {
            reads++
            return 40
          },
        },
        requests: { enumerable: true, value: 2 },
      },
    ) as Costs
    // Twice: the second call follows the units of the first.
    expect(limiter.costsFor(costs)).toEqual([2, 40, 2, 0.5, 40])
    expect(limiter.costsFor(costs)).toEqual([2, 40, 2, 0.5, 40])
    expect(reads).toBe(2)
  })
})
