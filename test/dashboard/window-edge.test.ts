/**
 * The wait that keeps the dashboard's end-to-end tests clear of a fixed window's restart: a full
 * hour (and 00:00 UTC, the day window's restart) never falls in the margin after it.
 */
import { describe, expect, it } from 'vitest'
import { msBeforeSpending } from '../helpers/window-edge.js'

const HOUR = 3_600_000
const MARGIN = 40_000
const midnight = Date.UTC(2026, 11, 3)

describe('msBeforeSpending', () => {
  it('does not wait far from a full hour', () => {
    expect(msBeforeSpending(midnight + 10 * 60_000, MARGIN)).toBe(0)
    expect(msBeforeSpending(midnight - MARGIN, MARGIN)).toBe(0)
  })

  it('waits past the hour when it is nearer than the margin, midnight included', () => {
    for (const before of [1, 5_000, MARGIN - 1]) {
      for (const edge of [midnight, midnight + 7 * HOUR]) {
        const now = edge - before
        const wait = msBeforeSpending(now, MARGIN)
        expect(now + wait).toBeGreaterThan(edge)
        expect(Math.floor((now + wait) / HOUR) * HOUR).toBe(edge)
        // …and from where it resumes, the next restart is an hour away.
        expect(msBeforeSpending(now + wait, MARGIN)).toBe(0)
      }
    }
  })
})
