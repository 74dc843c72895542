/**
 * The waits this process saw end (docs/queueing.md), per tier, over a recent window: how many
 * were admitted after waiting, how many were refused when their wait ran out, and the wait
 * times' percentiles — what the admin API's /queues shows beside the queues' shared state.
 */

/** How far back the figures go. */
export const QUEUE_WINDOW_MS = 300_000
/** Waits kept per tier at most (the newest): bounds the memory whatever the traffic. */
const KEPT_PER_TIER = 4096

interface Ring {
  at: Float64Array
  ms: Float64Array
  admitted: Uint8Array
  next: number
  size: number
}

export interface RecentWaits {
  admitted: number
  refused: number
  /** Wait percentiles (ms) of every wait in the window, admitted or refused; null without any. */
  p50Ms: number | null
  p90Ms: number | null
  p99Ms: number | null
  maxMs: number | null
}

export class QueueWaits {
  private readonly tiers = new Map<string, Ring>()

  constructor(private readonly now: () => number = Date.now) {}

  /** A wait that ended: admitted, or refused when its wait ran out. */
  record(tier: string, waitedMs: number, admitted: boolean): void {
    let ring = this.tiers.get(tier)
    if (ring === undefined) {
      ring = {
        at: new Float64Array(KEPT_PER_TIER),
        ms: new Float64Array(KEPT_PER_TIER),
        admitted: new Uint8Array(KEPT_PER_TIER),
        next: 0,
        size: 0,
      }
      this.tiers.set(tier, ring)
    }
    ring.at[ring.next] = this.now()
    ring.ms[ring.next] = waitedMs
    ring.admitted[ring.next] = admitted ? 1 : 0
    ring.next = (ring.next + 1) % KEPT_PER_TIER
    ring.size = Math.min(ring.size + 1, KEPT_PER_TIER)
  }

  /** The window's figures of one tier. */
  recent(tier: string): RecentWaits {
    const ring = this.tiers.get(tier)
    const since = this.now() - QUEUE_WINDOW_MS
    const waits: number[] = []
    let admitted = 0
    if (ring !== undefined) {
      for (let i = 0; i < ring.size; i++) {
        if (ring.at[i]! < since) continue
        waits.push(ring.ms[i]!)
        if (ring.admitted[i] === 1) admitted++
      }
    }
    waits.sort((a, b) => a - b)
    const pick = (q: number) =>
      waits.length === 0 ? null : waits[Math.min(waits.length - 1, Math.ceil(q * waits.length) - 1)]!
    return {
      admitted,
      refused: waits.length - admitted,
      p50Ms: pick(0.5),
      p90Ms: pick(0.9),
      p99Ms: pick(0.99),
      maxMs: waits.length === 0 ? null : waits[waits.length - 1]!,
    }
  }
}
