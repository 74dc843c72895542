import { describe, expect, it } from 'vitest'
import { blockedForMs, strike } from '../../src/core/block.js'
import { concurrencyCheck, concurrencyRelease } from '../../src/core/concurrency.js'
import { crossedThreshold } from '../../src/core/threshold.js'

describe('concurrency leases', () => {
  const p = { limit: 2, leaseMs: 1000 }
  it('holds leases until released or expired', () => {
    const a = concurrencyCheck(undefined, 0, 1, 'a', p)
    const b = concurrencyCheck(a.state, 10, 1, 'b', p)
    const c = concurrencyCheck(b.state, 20, 1, 'c', p)
    expect([a.allowed, b.allowed, c.allowed]).toEqual([true, true, false])
    expect(c.retryAfterMs).toBe(980) // lease a expires at 1000
    expect(concurrencyCheck(b.state, 1000, 1, 'c', p).allowed).toBe(true)
    const released = concurrencyRelease(b.state, 20, 'a', p)
    expect(released.remaining).toBe(1)
    expect(concurrencyRelease(released.state, 30, 'a', p).remaining).toBe(1)
  })
  it('a check without a lease id holds nothing', () => {
    const s = concurrencyCheck(undefined, 0, 1, undefined, p)
    expect(s.allowed).toBe(true)
    expect(s.state.size).toBe(0)
  })
})

describe('blocks', () => {
  const p = { after: 3, withinMs: 1000, durationsMs: [100, 500], forgetMs: 10_000 }
  it('the third strike within the window blocks, and a repeat offence blocks longer', () => {
    let s = strike(undefined, undefined, 0, p)
    s = strike(s.strikes, s.block, 10, p)
    expect(s.blockedNow).toBe(false)
    s = strike(s.strikes, s.block, 20, p)
    expect(s.blockedNow).toBe(true)
    expect(blockedForMs(s.block, 20)).toBe(100)
    expect(blockedForMs(s.block, 120)).toBe(0)
    let t = strike(undefined, s.block, 200, p)
    t = strike(t.strikes, t.block, 210, p)
    t = strike(t.strikes, t.block, 220, p)
    expect(blockedForMs(t.block, 220)).toBe(500)
    let u = strike(undefined, t.block, 1000, p)
    u = strike(u.strikes, u.block, 1001, p)
    u = strike(u.strikes, u.block, 1002, p)
    expect(blockedForMs(u.block, 1002)).toBe(500) // the last duration repeats
  })
  it('strikes spread wider than the window do not block', () => {
    let s = strike(undefined, undefined, 0, p)
    s = strike(s.strikes, s.block, 600, p)
    s = strike(s.strikes, s.block, 1200, p)
    expect(s.blockedNow).toBe(false)
    expect(s.strikes!.count).toBe(1)
  })
})

describe('alert threshold', () => {
  it('fires only on the charge that moves usage across the mark', () => {
    expect(crossedThreshold(10, 3, 1, 0.8)).toBe(false) // 6 -> 7 used
    expect(crossedThreshold(10, 2, 1, 0.8)).toBe(true) // 7 -> 8 used
    expect(crossedThreshold(10, 1, 1, 0.8)).toBe(false) // 8 -> 9 used
    expect(crossedThreshold(10, 0, 5, 0.8)).toBe(true) // 5 -> 10 used
    expect(crossedThreshold(10, 5, 0, 0.8)).toBe(false)
  })
})
