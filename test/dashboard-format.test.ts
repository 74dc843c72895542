/** The dashboard's numbers for people (dashboard/src/format.ts), without a browser. */
import { describe, expect, it } from 'vitest'
import { ago, amount, count, duration, millis, percent, usd } from '../dashboard/src/format.js'

describe('numbers for people', () => {
  it('counts: 950, 1.2k, 12k, 3.4M', () => {
    const cases: [number, string][] = [
      [0, '0'],
      [7, '7'],
      [950, '950'],
      [1000, '1k'],
      [1234, '1.2k'],
      [12_345, '12k'],
      [123_456, '123k'],
      [999_999, '1M'],
      [3_400_000, '3.4M'],
      [2_000_000_000, '2B'],
      [-1500, '-1.5k'],
      [2.5, '2.5'],
    ]
    for (const [n, text] of cases) expect(count(n), String(n)).toBe(text)
    expect(count(Number.NaN)).toBe('—')
    expect(count(undefined)).toBe('—')
  })

  it('dollars: $3.40, $1,234.50, two significant digits below a cent', () => {
    const cases: [number, string][] = [
      [0, '$0'],
      [3.4, '$3.40'],
      [1234.5, '$1,234.50'],
      [0.01, '$0.01'],
      [0.0034, '$0.0034'],
      [0.0004, '$0.0004'],
      [0.000016, '$0.000016'],
      [0.00000001, '<$0.000001'],
      [2_500_000, '$2.5M'],
      [-3.4, '-$3.40'],
    ]
    for (const [n, text] of cases) expect(usd(n), String(n)).toBe(text)
    expect(amount(1500, 'tokens')).toBe('1.5k')
    expect(amount(1.5, 'usd')).toBe('$1.50')
  })

  it('durations: 350 ms, 12s, 4m 20s, 1h 5m, 2d 3h', () => {
    const cases: [number, string][] = [
      [350, '350 ms'],
      [12_000, '12s'],
      [260_000, '4m 20s'],
      [240_000, '4m'],
      [3_900_000, '1h 5m'],
      [3_600_500, '1h'],
      [183_600_000, '2d 3h'],
    ]
    for (const [n, text] of cases) expect(duration(n), String(n)).toBe(text)
    expect(duration(Number.POSITIVE_INFINITY)).toBe('never')
    expect(millis(0.42)).toBe('0.42 ms')
    expect(millis(3.14)).toBe('3.1 ms')
    expect(percent(0.823)).toBe('82%')
    expect(percent(0.004)).toBe('0.4%')
  })

  it('times relative to now', () => {
    const now = Date.parse('2026-11-30T12:00:00Z')
    expect(ago('2026-11-30T11:59:58Z', now)).toBe('just now')
    expect(ago('2026-11-30T11:58:00Z', now)).toBe('2m ago')
    expect(ago('2026-11-30T09:00:00Z', now)).toBe('3h ago')
    expect(ago('2026-11-30T12:05:00Z', now)).toBe('in 5m')
    expect(ago(null, now)).toBe('—')
  })
})
