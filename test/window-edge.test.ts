/**
 * The wait that keeps tests clear of a fixed window's restart: a full hour (and 00:00 UTC, the
 * day window's restart) or a full minute (the loop detector's throttle) never falls in the margin
 * after it.
 */
import { describe, expect, it } from 'vitest'
import { HOUR, MINUTE, msBeforeSpending } from './helpers/window-edge.js'

const midnight = Date.UTC(2026, 11, 3)

describe('msBeforeSpending', () => {
  it('does not wait far from a restart', () => {
    expect(msBeforeSpending(midnight + 10 * MINUTE, HOUR, 40_000)).toBe(0)
    expect(msBeforeSpending(midnight - 40_000, HOUR, 40_000)).toBe(0)
    expect(msBeforeSpending(midnight + 30_000, MINUTE, 20_000)).toBe(0)
  })

  for (const [windowMs, margin] of [
    [HOUR, 40_000],
    [MINUTE, 20_000],
  ] as const) {
    it(`waits past a ${windowMs / MINUTE}-minute window's restart nearer than the margin, midnight included`, () => {
      for (const before of [1, 5_000, margin - 1]) {
        for (const edge of [midnight, midnight + 7 * HOUR, midnight + 7 * HOUR + 13 * MINUTE]) {
          if (edge % windowMs !== 0) continue
          const now = edge - before
          const wait = msBeforeSpending(now, windowMs, margin)
          expect(now + wait).toBeGreaterThan(edge)
          expect(Math.floor((now + wait) / windowMs) * windowMs).toBe(edge)
          // …and from where it resumes, the next restart is a whole window away.
          expect(msBeforeSpending(now + wait, windowMs, margin)).toBe(0)
        }
      }
    })
  }
})
