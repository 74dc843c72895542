import { hamming } from '../../src/core/detectors/index.js'

/** A loop fingerprint as the ring keeps it. */
export interface LoopEntry {
  at: number
  hash: string
  hi: number
  lo: number
}

/**
 * The plain newest-first list the loop ring stands for, and what counting `e` over it finds: `e`
 * added first, the list cut to `max` and to the entries inside the window, then the entries of
 * `e`'s hash (exact) and those within `distance` bits of its SimHash (near; none at distance 0).
 */
export function observeList(
  list: LoopEntry[],
  e: LoopEntry,
  now: number,
  windowMs: number,
  max: number,
  distance: number,
): { exact: number; near: number } {
  list.unshift(e)
  if (list.length > max) list.length = max
  let live = 0
  while (live < list.length && list[live]!.at > now - windowMs) live++
  list.length = live
  const exact = list.filter((x) => x.hash === e.hash).length
  const near = distance === 0 ? 0 : list.filter((x) => hamming(x, e) <= distance).length
  return { exact, near }
}
