import { sleep } from './sleep.js'

const HOUR = 3_600_000

/**
 * A fixed window restarts at every multiple of its length since the epoch: an hour's at every
 * full hour, a day's at 00:00 UTC (also a full hour). A test that spends such a window and then
 * reads what is left fails if a restart falls in between, so when the next full hour is nearer
 * than `marginMs` it waits until that hour has begun (with a second to spare) before spending.
 */
export async function clearOfHourEdge(marginMs: number): Promise<void> {
  const wait = msBeforeSpending(Date.now(), marginMs)
  if (wait > 0) await sleep(wait)
}

/** How long to wait at `now` so that no full hour falls in the next `marginMs`. */
export function msBeforeSpending(now: number, marginMs: number): number {
  const toNextHour = HOUR - (now % HOUR)
  return toNextHour < marginMs ? toNextHour + 1_000 : 0
}
