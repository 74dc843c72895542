import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { Ledger, type LedgerRecord } from '../../src/gateway/ledger.js'
import { ledgerLine } from '../../src/gateway/ledger-line.js'

/** Every field set, in the order the gateway builds a record (src/gateway/accounting.ts). */
function full(overrides: Partial<LedgerRecord> = {}): Required<LedgerRecord> {
  return {
    time: '2026-12-01T16:00:00.123Z',
    subject: 'key:Ab3dEf9h',
    tier: 'service',
    model: 'gpt-4o-mini',
    route: 'chat',
    stream: true,
    status: 200,
    outcome: 'ok',
    limited: true,
    fallback: 'local',
    queueMs: 12.5,
    deployment: 'east',
    failedDeployments: ['west', 'north "b"'],
    source: 'upstream',
    promptTokens: 13,
    completionTokens: 42,
    cachedTokens: 3,
    cacheWriteTokens: 1,
    cacheWrite1hTokens: 2,
    reasoningTokens: 7,
    tokens: 55,
    inputUsd: 0.00000195,
    cachedUsd: 1e-7,
    cacheWriteUsd: 0,
    outputUsd: 0.0000252,
    usd: 0.00002715,
    ...overrides,
  } as Required<LedgerRecord>
}

/** The line as JSON.stringify writes it: the ledger's format before ledgerLine. */
const expected = (r: unknown) => JSON.stringify(r)

const ODD_STRINGS = [
  '',
  'plain',
  'quote " and backslash \\',
  'newline\n tab\t cr\r nul\u0000 unit-separator\u001f del\u007f',
  'unicode: café, 日本語, emoji 🚀, combining é',
  'lone surrogates \ud800 and \udfff',
  'line separators \u2028 \u2029',
  '</script><!--',
  '{"json":"inside"}',
]
const ODD_NUMBERS = [
  0,
  -0,
  1,
  -1,
  1e-7,
  1.5e-10,
  1e21,
  123456789012345680000,
  0.1 + 0.2,
  5e-324,
  Number.MAX_VALUE,
]

describe('ledgerLine', () => {
  it('writes a full record exactly as JSON.stringify does', () => {
    const r = full()
    expect(ledgerLine(r)).toBe(expected(r))
    expect(JSON.parse(ledgerLine(r))).toEqual(r)
  })

  it('leaves out optional fields that are undefined, as JSON.stringify does', () => {
    const r: LedgerRecord = {
      time: '2026-12-01T16:00:00.000Z',
      subject: 'ip:203.0.113.0',
      tier: 'anonymous',
      model: '-',
      route: 'embeddings',
      stream: false,
      status: 429,
      outcome: 'upstream_error',
      limited: false,
      fallback: undefined,
      queueMs: undefined,
      deployment: undefined,
      failedDeployments: undefined,
      source: 'none',
      promptTokens: 0,
      completionTokens: 0,
      tokens: 0,
      usd: 0,
    }
    expect(ledgerLine(r)).toBe(expected(r))
    expect(Object.keys(JSON.parse(ledgerLine(r)))).not.toContain('fallback')
  })

  it('escapes odd strings in every string field as JSON.stringify does', () => {
    for (const s of ODD_STRINGS) {
      for (const field of ['time', 'subject', 'tier', 'model', 'route', 'outcome', 'deployment'] as const) {
        const r = full({ [field]: s })
        expect(ledgerLine(r)).toBe(expected(r))
        expect(JSON.parse(ledgerLine(r))).toEqual(r)
      }
      const r = full({ failedDeployments: [s, 'b'] })
      expect(ledgerLine(r)).toBe(expected(r))
    }
  })

  it('writes numbers as JSON.stringify does (1e-7, -0, huge, NaN and Infinity as null)', () => {
    for (const n of [...ODD_NUMBERS, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      for (const field of [
        'status',
        'queueMs',
        'promptTokens',
        'cachedTokens',
        'tokens',
        'inputUsd',
        'usd',
      ] as const) {
        const r = full({ [field]: n })
        expect(ledgerLine(r)).toBe(expected(r))
      }
    }
    for (const n of ODD_NUMBERS) {
      const r = full({ usd: n, cachedUsd: n })
      // -0 parses back as 0, as it did from JSON.stringify's line.
      expect(JSON.parse(ledgerLine(r))).toEqual(JSON.parse(expected(r)))
      if (!Object.is(n, -0)) expect(JSON.parse(ledgerLine(r)).usd).toBe(n)
    }
  })

  it('writes fields of another type than declared (null, missing) as JSON.stringify does', () => {
    const odd = [
      { deployment: null },
      { fallback: null },
      { failedDeployments: null },
      { status: null },
      { subject: undefined },
      { stream: undefined },
      { usd: '0.1' },
      { limited: 1 },
    ]
    for (const o of odd) {
      const r = full(o as unknown as Partial<LedgerRecord>)
      expect(ledgerLine(r)).toBe(expected(r))
      expect(JSON.parse(ledgerLine(r))).toEqual(JSON.parse(expected(r)))
    }
  })

  it('is what the ledger writes, one line per record', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-ledger-line-'))
    try {
      const path = join(dir, 'usage.jsonl')
      const ledger = new Ledger({ path, maxSize: 1 << 20, keep: 1 })
      await ledger.open()
      const records = ODD_STRINGS.map((s, i) =>
        full({ subject: s, usd: ODD_NUMBERS[i % ODD_NUMBERS.length]! }),
      )
      for (const r of records) ledger.append(r)
      await ledger.close()
      const lines = readFileSync(path, 'utf8').split('\n')
      expect(lines.pop()).toBe('')
      expect(lines).toEqual(records.map(expected))
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
