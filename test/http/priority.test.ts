/**
 * The middleware honours x-sluice-priority for tiers whose queue allows it (high waits ahead of
 * normal requests of the same subject), ignores it for other tiers, and answers a bad value from
 * an allowed tier with a 400 naming the header.
 */
import { describe, expect, it } from 'vitest'
import { Sluice } from '../../src/http/index.js'
import { SluiceInputError, tokenBucket } from '../../src/index.js'
import { queuesOf } from '../../src/waiting.js'

const tierOf = (priorities: boolean) => ({
  scope: 'ip' as const,
  limits: { burst: tokenBucket({ capacity: 1, refillPerSecond: 1 }) },
  queue: { maxWaitMs: 20_000, priorities },
})

const request = (ip: string, priority?: string) => ({
  method: 'GET',
  url: '/',
  headers: priority === undefined ? {} : { 'x-sluice-priority': priority },
  remoteAddress: ip,
})

async function order(s: Sluice, ip: string): Promise<string[]> {
  expect((await s.check(request(ip))).proceed).toBe(true)
  const done: string[] = []
  const call = (name: string, priority?: string) =>
    s.check(request(ip, priority)).then((r) => {
      expect(r.proceed).toBe(true)
      done.push(name)
    })
  const normal = [call('n1'), call('n2'), call('n3')]
  // The three take their places before the high one comes.
  const limiter = s.tierLimiter('anonymous')
  const queue = limiter.keysFor(`ip:${ip}`).queue
  while ((await queuesOf(limiter.store).length(queue)) < 3) await new Promise((r) => setTimeout(r, 5))
  await Promise.all([...normal, call('high', 'HIGH')])
  return done
}

describe('the x-sluice-priority header in the middleware', () => {
  it('orders waiters of a tier that allows it, and is ignored for one that does not', async () => {
    const allowed = new Sluice({ logger: false, tiers: { anonymous: tierOf(true) } })
    expect((await order(allowed, '192.0.2.1')).indexOf('high')).toBeLessThanOrEqual(1)
    const plain = new Sluice({ logger: false, tiers: { anonymous: tierOf(false) } })
    expect((await order(plain, '192.0.2.2')).indexOf('high')).toBe(3)
    expect((await plain.check(request('192.0.2.3', 'urgent'))).status).toBe(200)
  })

  it('answers a bad value from an allowed tier with a 400 naming the header', async () => {
    const s = new Sluice({ logger: false, tiers: { anonymous: tierOf(true) } })
    const bad = await s.check(request('192.0.2.4', 'urgent'))
    expect(bad.status).toBe(400)
    expect(bad.body?.error.message).toMatch(/x-sluice-priority.*"high", "normal" or "low"/)
    expect(bad.body?.error.code).toBe('invalid_priority')
  })

  it('rejects a tier whose queue.priorities is not a boolean, naming it', () => {
    expect(
      () =>
        new Sluice({
          logger: false,
          tiers: { anonymous: { ...tierOf(true), queue: { maxWaitMs: 10, priorities: 'yes' as never } } },
        }),
    ).toThrow(SluiceInputError)
    expect(
      () =>
        new Sluice({
          logger: false,
          tiers: { anonymous: { ...tierOf(true), queue: { maxWaitMs: 10, priorities: 'yes' as never } } },
        }),
    ).toThrow(/tiers\.anonymous\.queue\.priorities must be true or false/)
  })
})
