import { describe, expect, it } from 'vitest'
import { isoTime } from '../../src/gateway/iso-time.js'

describe('isoTime', () => {
  it('writes what toISOString() writes, second after second (the cached second never goes stale)', () => {
    const start = Date.UTC(2026, 11, 31, 23, 59, 58, 0)
    // Every millisecond across a minute, a day and a year boundary, then back in time.
    for (let ms = start; ms < start + 4000; ms++) expect(isoTime(ms)).toBe(new Date(ms).toISOString())
    for (let ms = start + 4000; ms > start - 2000; ms -= 7)
      expect(isoTime(ms)).toBe(new Date(ms).toISOString())
  })

  it('keeps the milliseconds and the second apart: the same milliseconds of another second', () => {
    const a = Date.UTC(2026, 0, 1, 0, 0, 1, 250)
    expect(isoTime(a)).toBe('2026-01-01T00:00:01.250Z')
    expect(isoTime(a + 1000)).toBe('2026-01-01T00:00:02.250Z')
    expect(isoTime(a)).toBe('2026-01-01T00:00:01.250Z')
  })

  it('writes every other time as toISOString() does (fractions, before 1970, six-digit years)', () => {
    for (const ms of [
      0, 0.5, 999.9, 1500.25, -1, -0.5, -86_400_001, 253_402_300_799_999, 253_402_300_800_000, 8.64e15,
      -8.64e15,
    ]) {
      expect(isoTime(ms)).toBe(new Date(ms).toISOString())
    }
  })

  it('throws as toISOString() does for a time that is no date', () => {
    expect(() => isoTime(Number.NaN)).toThrow(RangeError)
    expect(() => isoTime(8.64e15 + 1)).toThrow(RangeError)
  })
})
