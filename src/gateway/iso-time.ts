/**
 * A time as `Date.prototype.toISOString()` writes it (`2026-12-02T11:05:09.042Z`), for the ledger's
 * row of every call: toISOString() formats the whole date on each call (~7,500 instructions per
 * call in the gateway's profile); here the text up to the second is made once a second and the
 * milliseconds come from a table. The same text as toISOString() for every time.
 */

/** "000Z" … "999Z": the milliseconds and the zone. */
const MILLIS = Array.from({ length: 1000 }, (_, i) => `${String(i).padStart(3, '0')}Z`)

/** 10000-01-01T00:00:00Z: from there on toISOString() writes a six-digit year with its sign. */
const YEAR_10000 = 253_402_300_800_000

let lastSecond = Number.NaN
/** `2026-12-02T11:05:09.` of lastSecond. */
let lastPrefix = ''

/** `new Date(ms).toISOString()`. */
export function isoTime(ms: number): string {
  if (!(ms >= 0 && ms < YEAR_10000)) return new Date(ms).toISOString()
  const second = Math.floor(ms / 1000)
  if (second !== lastSecond) {
    lastPrefix = new Date(second * 1000).toISOString().slice(0, 20)
    lastSecond = second
  }
  return lastPrefix + MILLIS[Math.floor(ms) - second * 1000]!
}
