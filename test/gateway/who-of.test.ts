/**
 * whoOf() answers the detectors' identity fields of a settled call's subject, keeping the last
 * answer for the next call of the same subject and tier: a call of another subject or tier must
 * never get the kept one.
 */
import { describe, expect, it } from 'vitest'
import { whoOf } from '../../src/gateway/detections.js'

describe('whoOf', () => {
  it('answers each subject and tier, kept or not', () => {
    const calls: [string, string][] = [
      ['key:abc', 'service'],
      ['key:abc', 'service'],
      ['key:abc', 'free'],
      ['key:xyz', 'free'],
      ['user:u1', 'free'],
      ['ip:10.0.0.1', 'free'],
      ['ip:10.0.0.1', 'free'],
      ['key:abc', 'service'],
    ]
    for (const [subject, tier] of calls) {
      const kind = subject.startsWith('key:') ? 'key' : subject.startsWith('user:') ? 'user' : 'ip'
      expect(whoOf(subject, tier)).toEqual({
        subject,
        tier,
        kind,
        keyId: kind === 'key' ? subject.slice(4) : undefined,
      })
    }
  })

  it('keeps the answer for the same subject and tier, and it cannot be changed', () => {
    const a = whoOf('key:k1', 't')
    expect(whoOf('key:k1', 't')).toBe(a)
    expect(Object.isFrozen(a)).toBe(true)
    expect(whoOf('key:k1', 'u')).not.toBe(a)
  })
})
