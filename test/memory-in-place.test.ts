import { describe, expect, it } from 'vitest'
import {
  ALGORITHMS,
  calendar,
  fixedWindow,
  type LimitDefinition,
  slidingWindow,
  tokenBucket,
} from '../src/core/limits.js'
// The mock upstream's seeded generator (mulberry32): a failing sequence can be run again.
import { prng as random } from '../src/gateway/mock/generate.js'
import { type Costs, Limiter, type Reservation } from '../src/limiter.js'
import type { BlockOptions } from '../src/limiter-options.js'
import { MemoryStore } from '../src/store/memory.js'
import { Boxed, Mixed } from '../src/store/memory-layout.js'
import { callOutcome, randomLimiterCall } from './helpers/random-limiter-call.js'

/**
 * A MemoryStore decides consume, reserve and peek of a policy of token buckets, fixed and sliding
 * windows and calendars on the packed numbers themselves (Algorithm.checkPacked, no Steps): here
 * it is held to the general path (each algorithm's check() and a Step per limit) over long random
 * sequences of calls, costs, settlements, cancellations, resets, unblocks and clock steps — every
 * decision and every stored entry the same, bit for bit.
 */

/** The same store with the in-place decisions off: every op through check() and Steps. */
class GeneralPathStore extends MemoryStore {
  protected override readonly inPlace = false
}

/** Every live entry of a store, its numbers and values as they are (Maps as sorted pairs). */
function entriesOf(store: MemoryStore): [string, unknown][] {
  const out: [string, unknown][] = []
  const plain = (v: unknown): unknown =>
    v instanceof Map
      ? [...v].sort()
      : Array.isArray(v)
        ? v.map((x) => (typeof x === 'object' ? { ...x } : x))
        : v
  store.forEachEntry((key, slot) => {
    if (slot instanceof Boxed) out.push([key, { boxed: plain(slot.value), expiresAt: slot.expiresAt }])
    else if (slot instanceof Mixed) out.push([key, { nums: [...slot.nums], extra: slot.extra.map(plain) }])
    else out.push([key, [...slot]])
  })
  return out.sort((x, y) => (x[0] < y[0] ? -1 : 1))
}

interface Policy {
  name: string
  limits: Record<string, LimitDefinition>
  alertAt?: number
  block?: BlockOptions
  /** A random call's costs. */
  costs(r: () => number): Costs | undefined
}

/** A cost that is often 1, sometimes 0, fractional, large, or more than any limit holds. */
function amount(r: () => number, scale: number): number {
  const x = r()
  if (x < 0.3) return 1
  if (x < 0.4) return 0
  if (x < 0.6) return Math.round(r() * scale * 100) / 100
  if (x < 0.95) return Math.ceil(r() * scale)
  return scale * 50
}

const POLICIES: Policy[] = [
  {
    name: 'bucket',
    limits: { b: tokenBucket({ capacity: 5, refillPerSecond: 2 }) },
    costs: (r) => (r() < 0.4 ? undefined : { requests: amount(r, 3) }),
  },
  {
    name: 'fixed',
    limits: { f: fixedWindow({ limit: 6, windowMs: 1_000 }) },
    costs: (r) => (r() < 0.4 ? undefined : { requests: amount(r, 3) }),
  },
  {
    name: 'sliding',
    limits: { s: slidingWindow({ limit: 7, windowMs: 2_000 }) as LimitDefinition },
    costs: (r) => (r() < 0.4 ? undefined : { requests: amount(r, 3) }),
  },
  {
    name: 'calendar',
    limits: { c: calendar({ limit: 12, period: 'day', utcOffset: '+05:30', unit: 'requests' }) },
    costs: (r) => (r() < 0.4 ? undefined : { requests: amount(r, 4) }),
  },
  {
    name: 'tier',
    limits: {
      hourly: slidingWindow({ limit: 20, windowMs: 3_000 }) as LimitDefinition,
      tokens: tokenBucket({ capacity: 1_000, refillPerSecond: 100, unit: 'tokens' }),
      burst: tokenBucket({ capacity: 4, refillPerSecond: 1 }),
      minute: fixedWindow({ limit: 2_000, windowMs: 1_500, unit: 'tokens' }),
      spend: calendar({ limit: 5, period: 'week', unit: 'usd' }),
    },
    alertAt: 0.8,
    block: { after: 3, withinMs: 5_000, durationsMs: [2_000, 4_000], forgetMs: 10_000 },
    costs: (r) =>
      r() < 0.2 ? undefined : { requests: amount(r, 2), tokens: amount(r, 400), usd: amount(r, 1) / 10 },
  },
  {
    // The tight limit last: the others have written their charge into the subject's numbers
    // when it denies, and must be put back (and a blocked subject's checks charge nothing).
    name: 'denied-last',
    limits: {
      minute: fixedWindow({ limit: 50, windowMs: 2_000 }),
      hourly: slidingWindow({ limit: 40, windowMs: 4_000 }) as LimitDefinition,
      day: calendar({ limit: 60, period: 'day', unit: 'requests' }),
      burst: tokenBucket({ capacity: 3, refillPerSecond: 1 }),
    },
    block: { after: 2, withinMs: 3_000, durationsMs: [1_000], forgetMs: 6_000 },
    costs: (r) => (r() < 0.3 ? undefined : { requests: amount(r, 2) }),
  },
]

/**
 * A clock step: none, a little, up to a few windows, a day, (a hand-set clock) a little back, or
 * to the very instant a subject's state is full again (`ttlMs`: its key expires).
 */
function clockStep(r: () => number, ttlMs: number | undefined): number {
  const x = r()
  if (x < 0.1 && ttlMs !== undefined) return ttlMs
  if (x < 0.35) return 0
  if (x < 0.75) return Math.floor(r() * 400)
  if (x < 0.93) return Math.floor(r() * 6_000)
  if (x < 0.97) return Math.floor(r() * 2 * 86_400_000)
  return -Math.floor(r() * 50)
}

/** Runs `steps` random calls of `policy` on both paths, comparing after each. */
async function compare(policy: Policy, seed: number, steps: number): Promise<void> {
  const r = random(seed)
  // Close to the end of a month, so that days, weeks and the month turn during a run.
  let now = Date.UTC(2026, 0, 30, 18, 29, 58, 500)
  const clock = () => now
  const options = (store: MemoryStore) => ({
    store,
    policy: policy.name,
    limits: policy.limits,
    ...(policy.alertAt === undefined ? {} : { alertAt: policy.alertAt }),
    ...(policy.block === undefined ? {} : { block: policy.block }),
  })
  const fast = new MemoryStore({ now: clock })
  const general = new GeneralPathStore({ now: clock })
  const limiters = [new Limiter(options(fast)), new Limiter(options(general))] as const
  const held = [new Map<string, Reservation>(), new Map<string, Reservation>()] as const
  const subjects = ['a', 'b', 'c']
  try {
    for (let i = 0; i < steps; i++) {
      const subject = subjects[Math.floor(r() * subjects.length)]!
      // ttlMs deletes an expired key: asked of both stores alike.
      const state = limiters[0].keysFor(subject).state
      const ttlMs = fast.ttlMs(state)
      expect(general.ttlMs(state)).toBe(ttlMs)
      now += clockStep(r, ttlMs)
      const step = randomLimiterCall(r, subject, () => policy.costs(r))
      const a = await callOutcome(step, limiters[0], held[0])
      const b = await callOutcome(step, limiters[1], held[1])
      const where = `${policy.name}, seed ${seed}, step ${i}`
      expect(a, where).toStrictEqual(b)
      expect(entriesOf(fast), where).toStrictEqual(entriesOf(general))
      expect([fast.bytes, fast.size], where).toStrictEqual([general.bytes, general.size])
    }
  } finally {
    await fast.close()
    await general.close()
  }
}

describe('MemoryStore in-place decisions', () => {
  for (const policy of POLICIES) {
    it(`${policy.name}: the same decisions and state as the general path`, async () => {
      for (const seed of [1, 2, 3, 4]) await compare(policy, seed, 1_500)
    })
  }

  it('takes the in-place path for these policies (the general store does not)', () => {
    const limits = { b: tokenBucket({ capacity: 5, refillPerSecond: 1 }) }
    const fast = new Limiter({ store: new MemoryStore(), policy: 'p', limits })
    const general = new Limiter({ store: new GeneralPathStore(), policy: 'p', limits })
    // Only the general path calls check(): count its calls.
    const algorithm = tokenBucketCheckCounter()
    try {
      fast.consumeSync('x')
      expect(algorithm.calls()).toBe(0)
      general.consumeSync('x')
      expect(algorithm.calls()).toBe(1)
    } finally {
      algorithm.restore()
    }
  })
})

/** Counts the token bucket's check() calls until restored. */
function tokenBucketCheckCounter() {
  const bucket = ALGORITHMS.tokenBucket
  const check = bucket.check
  let calls = 0
  bucket.check = (...args) => {
    calls++
    return check(...args)
  }
  return {
    calls: () => calls,
    restore: () => {
      bucket.check = check
    },
  }
}
