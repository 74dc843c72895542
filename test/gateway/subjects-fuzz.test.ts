/**
 * Fuzzing the CLI's subject parsing and output escaping: whatever an operator types (or a ledger
 * holds), resolution either names the gateway's own bucket or says why not, and nothing printed
 * carries a control character.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { parseConfig } from '../../src/gateway/config/load.js'
import { escapeControls, table } from '../../src/gateway/format.js'
import { sluiceOptions } from '../../src/gateway/http-options.js'
import { resolveSubject, SubjectError } from '../../src/gateway/subjects.js'
import { generateApiKey, hashApiKey, Sluice } from '../../src/http/index.js'
import { MemoryStore } from '../../src/store/memory.js'

const config = parseConfig({
  auth: {
    trustProxy: ['loopback'],
    trustedUserHeader: 'x-user-id',
    keys: [
      { id: 'ci-bot', tier: 'service', hash: hashApiKey(generateApiKey()) },
      { id: 'alice-laptop', tier: 'premium', user: 'alice', hash: hashApiKey(generateApiKey()) },
    ],
  },
})
const sluice = new Sluice(sluiceOptions(config, { store: new MemoryStore(), logger: false }))

// biome-ignore lint/suspicious/noControlCharactersInRegex: no control character may be printed
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/

describe('subject parsing and output escaping (fuzzed)', () => {
  it('any input resolves to buckets or is refused with a SubjectError, never anything else', async () => {
    const prefixed = fc.tuple(fc.constantFrom('ip:', 'user:', 'key:', 'ip:::', 'ip:10.', ''), fc.string())
    await fc.assert(
      fc.asyncProperty(prefixed, async ([prefix, rest]) => {
        const input = prefix + rest
        try {
          const resolved = await resolveSubject(sluice, config, input)
          for (const t of resolved.targets) expect(t.subject).toMatch(/^(ip|user|key):/)
        } catch (error) {
          expect(error).toBeInstanceOf(SubjectError)
        }
      }),
      { numRuns: 2_000 },
    )
  })

  it('an address resolves to the bucket the gateway counts it in', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.ipV4(), fc.ipV6()), async (address) => {
        const resolved = await resolveSubject(sluice, config, `ip:${address}`)
        const counted = sluice.ip.resolve(address, undefined)!.subject
        expect(resolved.targets.map((t) => t.subject)).toEqual([counted])
      }),
      { numRuns: 2_000 },
    )
  })

  it('escaped text and tables never carry a control character, and plain text is left alone', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), fc.string({ unit: 'binary' }), (a, b) => {
        expect(escapeControls(a)).not.toMatch(CONTROL)
        // One header, one rule, one row: whatever the cells hold, no line of its own.
        const lines = table(['x', 'y'], [[a, b]]).split('\n')
        expect(lines).toHaveLength(3)
        for (const line of lines) expect(line).not.toMatch(CONTROL)
        expect(escapeControls(a, { keepNewlines: true }).replace(/\n/g, '')).not.toMatch(CONTROL)
      }),
      { numRuns: 2_000 },
    )
    fc.assert(
      fc.property(fc.stringMatching(/^[\w .:/@-]*$/), (plain) => {
        expect(escapeControls(plain)).toBe(plain)
      }),
    )
  })
})
