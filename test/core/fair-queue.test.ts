import { describe, expect, it } from 'vitest'
import { enqueue, head, leave, newFairQueue, purge, renew, serve } from '../../src/core/fair-queue.js'

const params = (flow: string, weight = 1, waiter = flow) => ({
  waiter,
  flow,
  weight,
  leaseMs: 1000,
  maxPerFlow: 100,
  maxTotal: 1000,
})

describe('fair queue order', () => {
  it('serves a flow with one waiter before the later waiters of a flow with many', () => {
    const q = newFairQueue()
    for (let i = 0; i < 50; i++) enqueue(q, 0, params('heavy', 1, `h${i}`))
    const light = enqueue(q, 0, params('light'))
    if (!light.queued) throw new Error('not queued')
    const order: string[] = []
    for (let i = 0; i < 3; i++) {
      const h = head(q)!
      order.push(h.flow)
      serve(q, h.id)
    }
    // The light flow's first ticket ties with the heavy flow's first and arrived later.
    expect(order).toEqual(['heavy', 'light', 'heavy'])
  })

  it('hands out places in proportion to weights when every flow keeps waiting', () => {
    const q = newFairQueue()
    const weights: Record<string, number> = { a: 4, b: 2, c: 1 }
    let n = 0
    for (const flow of Object.keys(weights)) {
      for (let i = 0; i < 20; i++) enqueue(q, 0, params(flow, weights[flow], `${flow}${n++}`))
    }
    const served: Record<string, number> = { a: 0, b: 0, c: 0 }
    for (let i = 0; i < 700; i++) {
      const h = head(q)!
      served[h.flow]! += 1
      serve(q, h.id)
      // Saturating: each flow sends again as soon as one of its calls passes.
      enqueue(q, 0, params(h.flow, weights[h.flow], `${h.flow}${n++}`))
    }
    expect(served).toEqual({ a: 400, b: 200, c: 100 })
  })

  it('drops tickets whose lease ran out, and renews only live ones', () => {
    const q = newFairQueue()
    const a = enqueue(q, 0, params('a'))
    const b = enqueue(q, 0, params('b'))
    if (!a.queued || !b.queued) throw new Error('not queued')
    expect(renew(q, b.ticket.id, 900, 1000)).toBe(true)
    purge(q, 1000)
    expect(head(q)?.id).toBe(b.ticket.id)
    expect(renew(q, a.ticket.id, 1000, 1000)).toBe(false)
    leave(q, b.ticket.id)
    expect(head(q)).toBeUndefined()
    expect(q.flows.size).toBe(0)
  })

  it('refuses a ticket beyond the bounds per flow and in total', () => {
    const q = newFairQueue()
    const bounded = { ...params('a'), maxPerFlow: 2, maxTotal: 3 }
    expect(enqueue(q, 0, { ...bounded, waiter: '1' }).queued).toBe(true)
    expect(enqueue(q, 0, { ...bounded, waiter: '2' }).queued).toBe(true)
    expect(enqueue(q, 0, { ...bounded, waiter: '3' })).toMatchObject({ queued: false, reason: 'flow-full' })
    expect(enqueue(q, 0, { ...bounded, flow: 'b', waiter: '4' }).queued).toBe(true)
    expect(enqueue(q, 0, { ...bounded, flow: 'c', waiter: '5' })).toMatchObject({
      queued: false,
      reason: 'queue-full',
    })
  })
})
