import { describe, expect, it } from 'vitest'
import { fixedWindow, Limiter, tokenBucket } from '../src/index.js'
import { APPLY_FUNCTION } from '../src/store/redis/script.js'
import { redisStoreFixture } from './helpers/redis-store-fixture.js'

const redis = redisStoreFixture()

async function admitted(limiter: Limiter, subject: string, calls: number): Promise<number> {
  let n = 0
  for (let i = 0; i < calls; i++) if ((await limiter.consume(subject)).allowed) n++
  return n
}

describe('policies kept by the script between calls', () => {
  it('two limiters of one name and other capacities are each held to their own', async () => {
    const small = new Limiter({
      store: redis.store,
      policy: 'kept',
      limits: { hourly: fixedWindow({ limit: 3, windowMs: 3_600_000 }) },
    })
    const large = new Limiter({
      store: redis.store,
      policy: 'kept',
      limits: { hourly: fixedWindow({ limit: 7, windowMs: 3_600_000 }) },
    })
    // Interleaved, on subjects of their own: each sees its own capacity.
    const counts = { small: 0, large: 0 }
    for (let i = 0; i < 10; i++) {
      if ((await small.consume('a')).allowed) counts.small++
      if ((await large.consume('b')).allowed) counts.large++
    }
    expect(counts).toEqual({ small: 3, large: 7 })
  })

  it('a caller sending 1,200 different policies (more than are kept) is decided exactly throughout', async () => {
    const first = new Limiter({
      store: redis.store,
      policy: 'churn-0',
      limits: { burst: tokenBucket({ capacity: 2, refillPerSecond: 0.001 }) },
    })
    expect(await admitted(first, 's', 3)).toBe(2)
    for (let i = 1; i <= 1_200; i++) {
      const capacity = (i % 3) + 1
      const limiter = new Limiter({
        store: redis.store,
        policy: `churn-${i}`,
        limits: { burst: tokenBucket({ capacity, refillPerSecond: 0.001 + i / 1e6 }) },
      })
      expect(await admitted(limiter, 's', capacity + 1)).toBe(capacity)
    }
    // The first policy, long since dropped from the kept set, still holds its state and capacity.
    expect(await admitted(first, 's', 1)).toBe(0)
    const again = new Limiter({
      store: redis.store,
      policy: 'churn-0',
      limits: { burst: tokenBucket({ capacity: 2, refillPerSecond: 0.001 }) },
    })
    expect(await admitted(again, 't', 3)).toBe(2)
  })

  it('a malformed policy fails its call with a message and is not kept', async () => {
    // Loaded by a decision first, then called by hand with policy texts no Limiter sends.
    await new Limiter({
      store: redis.store,
      policy: 'load',
      limits: { h: fixedWindow({ limit: 1, windowMs: 3_600_000 }) },
    }).consume('x')
    const call = (policy: string) =>
      redis.admin.call(
        'FCALL',
        APPLY_FUNCTION,
        1,
        'sluice:{bad}#1',
        1,
        policy,
        1,
        0,
        0,
        '',
        '',
        'c1',
        1,
      ) as Promise<unknown>
    await expect(call('1 0 0 noSuchKind 1 2 5 1000')).rejects.toThrow(/no limit algorithm noSuchKind/)
    await expect(call('1 0 0 tokenBucket 1 2 5 1000 77')).rejects.toThrow(
      /policy has 9 fields where its limits name 8/,
    )
    // Still refused the second time: a failed parse is not kept.
    await expect(call('1 0 0 noSuchKind 1 2 5 1000')).rejects.toThrow(/no limit algorithm noSuchKind/)
    // The well-formed text decides.
    const reply = (await redis.admin.callBuffer(
      'FCALL',
      APPLY_FUNCTION,
      1,
      'sluice:{bad}#1',
      1,
      '1 0 0 tokenBucket 1 2 5 1000',
      1,
      0,
      0,
      '',
      '',
      'c1',
      1,
    )) as Buffer[]
    // now, then the op's status and blockedMs, then its one limit's four numbers: allowed.
    expect(reply[0]!.length).toBe(8 * 7)
    expect(reply[0]!.readDoubleLE(8)).toBe(1)
  })
})
