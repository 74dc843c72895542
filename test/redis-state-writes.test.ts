import { describe, expect, it } from 'vitest'
import { Limiter, slidingWindow, tokenBucket } from '../src/index.js'
import { commandsOf } from './helpers/command-stats.js'
import { redisStoreFixture } from './helpers/redis-store-fixture.js'

const redis = redisStoreFixture()

function limiter(policy: string): Limiter {
  return new Limiter({
    store: redis.store,
    policy,
    limits: {
      burst: tokenBucket({ capacity: 100, refillPerSecond: 0.001 }),
      hourly: slidingWindow({ limit: 1000, windowMs: 3_600_000 }),
    },
  })
}

/** The remaining of each limit, as a peek that costs nothing sees it. */
async function remainingOf(l: Limiter, subject: string): Promise<number[]> {
  return (await l.peek(subject, { requests: 0 })).limits.map((s) => s.remaining)
}

// Ops of one event-loop turn go to Redis as one batch; a batch writes a state key at most twice:
// at its first op, and once more when its ops are done, as the last of them left it.
describe('a batch writes each state key at most twice', () => {
  it('a hot subject: 16 ops in one batch, two SETs, every op charged', async () => {
    const l = limiter('writes-hot')
    await l.peek('warm-up') // the library loaded, the policy known
    let decisions: Awaited<ReturnType<Limiter['consume']>>[] = []
    const counts = await commandsOf(redis.admin, async () => {
      decisions = await Promise.all(Array.from({ length: 16 }, () => l.consume('alice')))
    })
    expect(counts.fcall ?? counts.evalsha).toBe(1)
    expect(counts.set).toBe(2)
    expect(decisions.every((d) => d.allowed)).toBe(true)
    // Each op saw the ones before it in the batch.
    expect(decisions.map((d) => d.limits[0]!.remaining)).toEqual(
      Array.from({ length: 16 }, (_, i) => expect.closeTo(99 - i, 3)),
    )
    expect(await remainingOf(l, 'alice')).toEqual([expect.closeTo(84, 3), 984])
    // The key lives until the bucket is full again (16 tokens at 0.001/s: ~16,000 s).
    const pttl = await redis.admin.pttl(l.keysFor('alice').state)
    expect(pttl).toBeGreaterThan(15_000_000)
    expect(pttl).toBeLessThanOrEqual(16_000_000)
  })

  it('two subjects interleaved: each key written twice, each with its own charges', async () => {
    const l = limiter('writes-two')
    await l.peek('warm-up')
    const counts = await commandsOf(redis.admin, async () => {
      await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          l.consume(i % 2 === 0 ? 'bob' : 'carol', { requests: i % 2 === 0 ? 1 : 2 }),
        ),
      )
    })
    expect(counts.set).toBe(4)
    expect(await remainingOf(l, 'bob')).toEqual([expect.closeTo(95, 3), 995])
    expect(await remainingOf(l, 'carol')).toEqual([expect.closeTo(90, 3), 990])
  })

  it('a subject once in the batch: written once', async () => {
    const l = limiter('writes-once')
    await l.peek('warm-up')
    const counts = await commandsOf(redis.admin, async () => {
      await Promise.all(['frank', 'grace', 'heidi'].map((s) => l.consume(s)))
    })
    expect(counts.set).toBe(3)
    expect(await remainingOf(l, 'grace')).toEqual([expect.closeTo(99, 3), 999])
  })

  it('a reset in the batch: what came before it is gone, what came after it stays', async () => {
    const l = limiter('writes-reset')
    await l.consume('dave', { requests: 5 })
    await Promise.all([l.consume('dave'), l.reset('dave'), l.consume('dave', { requests: 3 })])
    expect(await remainingOf(l, 'dave')).toEqual([expect.closeTo(97, 3), 997])
    await Promise.all([l.consume('dave'), l.reset('dave')])
    expect(await redis.admin.exists(l.keysFor('dave').state)).toBe(0)
    expect(await remainingOf(l, 'dave')).toEqual([100, 1000])
  })

  it('a denied op in the batch charges nothing and does not undo the ones before it', async () => {
    const l = limiter('writes-denied')
    const [a, b, c] = await Promise.all([
      l.consume('erin', { requests: 60 }),
      l.consume('erin', { requests: 60 }),
      l.consume('erin', { requests: 30 }),
    ])
    expect([a.allowed, b.allowed, c.allowed]).toEqual([true, false, true])
    expect(await remainingOf(l, 'erin')).toEqual([expect.closeTo(10, 3), 910])
  })
})
