/**
 * A step SQLite refuses at once with SQLITE_BUSY (a WAL switch while another process opens the
 * same new file) is tried again until its deadline; other errors are not. The real race is run by
 * the "opened by three processes at once" migration test; here the rule itself, with a clock.
 */
import { describe, expect, it } from 'vitest'
import { retryWhileBusy } from '../../src/control/sqlite-busy.js'

const busy = () => Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' })

describe('retryWhileBusy', () => {
  it('tries a busy step again until it passes', () => {
    let calls = 0
    let t = 0
    const pauses: number[] = []
    const value = retryWhileBusy(
      () => {
        calls++
        if (calls < 4) throw busy()
        return 'wal'
      },
      5000,
      () => t,
      (ms) => {
        pauses.push(ms)
        t += ms
      },
    )
    expect(value).toBe('wal')
    expect(calls).toBe(4)
    expect(pauses).toEqual([5, 10, 20])
  })

  it('gives up at its deadline with the last error', () => {
    let t = 0
    let calls = 0
    expect(() =>
      retryWhileBusy(
        () => {
          calls++
          throw busy()
        },
        300,
        () => t,
        (ms) => {
          t += ms
        },
      ),
    ).toThrow('database is locked')
    expect(t).toBe(300)
    expect(calls).toBeGreaterThan(3)
  })

  it('throws any other error at once', () => {
    let calls = 0
    const pause = () => {
      throw new Error('no pause expected')
    }
    expect(() =>
      retryWhileBusy(
        () => {
          calls++
          throw Object.assign(new Error('no such table'), { code: 'SQLITE_ERROR' })
        },
        5000,
        Date.now,
        pause,
      ),
    ).toThrow('no such table')
    expect(calls).toBe(1)
  })
})
