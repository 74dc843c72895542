import { sleep } from './sleep.js'

export const MINUTE = 60_000
export const HOUR = 3_600_000

/**
 * A fixed window restarts at every multiple of its length since the epoch: a minute's at every
 * full minute (the loop detector's throttle), an hour's at every full hour, a day's at 00:00 UTC
 * (also a full hour). A test that spends such a window and then expects a refusal fails if a
 * restart falls in between, so when the next restart is nearer than `marginMs` it waits until
 * that window has begun (with a second to spare) before spending.
 */
export async function clearOfWindowEdge(windowMs: number, marginMs: number): Promise<void> {
  const wait = msBeforeSpending(Date.now(), windowMs, marginMs)
  if (wait > 0) await sleep(wait)
}

/** How long to wait at `now` so that no restart of a `windowMs` window falls in the next `marginMs`. */
export function msBeforeSpending(now: number, windowMs: number, marginMs: number): number {
  const toNext = windowMs - (now % windowMs)
  return toNext < marginMs ? toNext + 1_000 : 0
}
