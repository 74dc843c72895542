import { describe, expect, it } from 'vitest'
import { CircuitBreaker } from '../../src/store/breaker.js'

describe('CircuitBreaker', () => {
  it('turns down only after the threshold of failures in a row', () => {
    const b = new CircuitBreaker(3, 1000)
    expect(b.failure(1001)).toBeUndefined()
    expect(b.failure(1002)).toBeUndefined()
    expect(b.success(1003)).toBeUndefined() // a success in between starts the count again
    expect(b.failure(1004)).toBeUndefined()
    expect(b.failure(1005)).toBeUndefined()
    expect(b.up).toBe(true)
    expect(b.failure(1006)).toEqual({ to: 'down', afterMs: 6 })
    expect(b.up).toBe(false)
    expect(b.since).toBe(1006)
  })

  it('reports each transition once and comes back on the first success', () => {
    const b = new CircuitBreaker(1, 0)
    expect(b.failure(10)).toEqual({ to: 'down', afterMs: 10 })
    expect(b.failure(20)).toBeUndefined()
    expect(b.failure(30)).toBeUndefined()
    expect(b.success(250)).toEqual({ to: 'up', afterMs: 240 })
    expect(b.success(260)).toBeUndefined()
    expect(b.state).toBe('up')
    expect(b.failures).toBe(0)
  })
})
