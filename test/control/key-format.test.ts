import { createHash } from 'node:crypto'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  formatKey,
  generatePublicId,
  generateSecret,
  hashSecret,
  parseKey,
  secretMatches,
} from '../../src/control/key-format.js'

describe('key format', () => {
  it('issues a 10-character base32 id and a 43-character URL-safe secret (256 bits)', () => {
    const ids = new Set<string>()
    for (let i = 0; i < 2000; i++) {
      const id = generatePublicId()
      expect(id).toMatch(/^[a-z2-7]{10}$/)
      ids.add(id)
      expect(generateSecret()).toMatch(/^[A-Za-z0-9_-]{43}$/)
    }
    expect(ids.size).toBe(2000)
  })

  it('parses what it formats, whatever the secret holds (it may contain "-")', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...Array.from({ length: 50 }, generatePublicId)),
        fc.stringMatching(/^[A-Za-z0-9_-]{32,128}$/),
        (id, secret) => {
          expect(parseKey(formatKey(id, secret))).toEqual({ id, secret })
        },
      ),
    )
  })

  it('refuses anything else before any lookup, including arbitrary strings', () => {
    const id = generatePublicId()
    // A secret may start with "-" (then id + secret without the separator is a well-formed key).
    const secret = `A${generateSecret().slice(1)}`
    for (const bad of [
      `sk-sluice-${id}${secret}`, // no separator
      `sk-sluice-${id.toUpperCase()}-${secret}`,
      `sk-sluice-${id.slice(0, 9)}-${secret}`,
      `sk-sluice-${id}-${secret.slice(0, 31)}`, // under 192 bits
      `sk-sluice-${id}-${secret}+`, // not URL-safe
      `sk-sluice-${id}-${'a'.repeat(129)}`,
      `sk-other-${id}-${secret}`,
      ` sk-sluice-${id}-${secret}`,
      'sk-sluice-Q2hhbmdlTWVQbGVhc2VJdHNBVGVzdEtleUFiY2RlZmdo', // shaped like a sluice.yaml key
    ]) {
      expect(parseKey(bad), bad).toBeUndefined()
    }
    for (const bad of [undefined, null, 42, {}, ['sk-sluice-']]) expect(parseKey(bad)).toBeUndefined()
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (s) => {
        const parsed = parseKey(s)
        if (parsed !== undefined) expect(formatKey(parsed.id, parsed.secret)).toBe(s)
      }),
    )
  })

  it('stores the SHA-256 of the secret and compares digests, never throwing on a malformed hash', () => {
    const secret = generateSecret()
    const hash = hashSecret(secret)
    expect(hash).toBe(createHash('sha256').update(secret).digest('hex'))
    expect(secretMatches(secret, hash)).toBe(true)
    expect(secretMatches(secret, hash.toUpperCase())).toBe(true) // hex digits either case
    expect(secretMatches(`${secret}x`, hash)).toBe(false)
    expect(secretMatches(secret, hashSecret(generateSecret()))).toBe(false)
    for (const broken of ['', 'zz'.repeat(32), hash.slice(0, 62), `${hash}00`, null, undefined]) {
      expect(secretMatches(secret, broken)).toBe(false)
    }
  })
})
