/**
 * The head of a proxied answer: the upstream's headers that may reach the client, then the
 * gateway's own, one line a name (the gateway's value wins), and whether the head is ASCII.
 */
import { describe, expect, it } from 'vitest'
import { responseHead } from '../../src/gateway/upstream.js'

function headOf(upstream: Record<string, string | string[] | undefined>, own: Record<string, string>) {
  const head: (string | string[])[] = []
  const ascii = responseHead(upstream, own, head)
  return { head, ascii }
}

describe('responseHead', () => {
  it('lists the upstream headers that pass, then the gateway’s own, flat', () => {
    const { head, ascii } = headOf(
      {
        'Content-Type': 'application/json',
        'x-request-id': 'req_1',
        'openai-organization': 'org-operator',
        'x-ratelimit-remaining-requests': '9999',
        'set-cookie': ['a=1', 'b=2'],
        connection: 'keep-alive',
        'content-length': '12',
        missing: undefined,
      },
      { 'x-ratelimit-remaining-requests': '41', 'x-should-retry': 'false' },
    )
    expect(head).toEqual([
      'content-type',
      'application/json',
      'x-request-id',
      'req_1',
      'x-ratelimit-remaining-requests',
      '41',
      'x-should-retry',
      'false',
    ])
    expect(ascii).toBe(true)
  })

  it('gives one line to a name both set, with the gateway’s value', () => {
    const { head } = headOf(
      { 'x-sluice-fallback': 'upstream', 'Retry-After': '30', 'x-other': '1' },
      { 'x-sluice-fallback': 'open', 'retry-after': '2' },
    )
    expect(head).toEqual(['x-other', '1', 'x-sluice-fallback', 'open', 'retry-after', '2'])
  })

  it('passes names that only an object’s prototype has', () => {
    const { head } = headOf({ constructor: 'x', tostring: 'y' }, {})
    expect(head).toEqual(['constructor', 'x', 'tostring', 'y'])
  })

  it('says when an upstream value is not plain ASCII text', () => {
    expect(headOf({ 'x-note': 'caf\u00e9' }, { a: '1' }).ascii).toBe(false)
    expect(headOf({ 'x-note': ['a', 'b'] }, {}).ascii).toBe(false)
    expect(headOf({ 'x-note': 'tab\there ~' }, {}).ascii).toBe(true)
    // A dropped header does not count.
    expect(headOf({ 'openai-project': 'caf\u00e9' }, {}).ascii).toBe(true)
  })
})
