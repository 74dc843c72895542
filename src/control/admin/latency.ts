/**
 * The latency the gateway adds to a call (its own work: identify, check, count, reserve, settle —
 * not the upstream's time), over a recent window, for the dashboard's p50 / p99. The gateway
 * calls `record(ms)` once per call (O(1): two array writes); the admin API's `/latency` reads
 * `snapshot()`, which sorts at most `samples` numbers.
 */
import { ControlInputError } from '../errors.js'

export interface LatencySnapshot {
  /** The window the figures cover, in ms. */
  windowMs: number
  /** Calls measured in the window (at most `samples` of them are kept). */
  count: number
  p50Ms: number | null
  p90Ms: number | null
  p99Ms: number | null
  maxMs: number | null
}

export interface LatencyRecorderOptions {
  /** The latest calls kept (default 10,000). */
  samples?: number
  /** Only calls this recent count (default 5 minutes). */
  windowMs?: number
  /** Epoch ms (default Date.now). */
  clock?: () => number
}

export class LatencyRecorder {
  readonly windowMs: number
  private readonly values: Float64Array
  private readonly times: Float64Array
  private readonly clock: () => number
  private next = 0
  private filled = 0

  constructor(options: LatencyRecorderOptions = {}) {
    const samples = options.samples ?? 10_000
    if (!Number.isSafeInteger(samples) || samples < 1 || samples > 1_000_000) {
      throw new ControlInputError('samples', 'must be a whole number from 1 to 1,000,000', samples)
    }
    const windowMs = options.windowMs ?? 300_000
    if (!Number.isSafeInteger(windowMs) || windowMs < 1) {
      throw new ControlInputError('windowMs', 'must be a whole number of milliseconds ≥ 1', windowMs)
    }
    this.windowMs = windowMs
    this.values = new Float64Array(samples)
    this.times = new Float64Array(samples)
    this.clock = options.clock ?? Date.now
  }

  /** One call's added latency; a negative or non-finite value is ignored (a clock step, a bug). */
  record(ms: number): void {
    if (!(ms >= 0) || ms === Number.POSITIVE_INFINITY) return
    this.values[this.next] = ms
    this.times[this.next] = this.clock()
    this.next = (this.next + 1) % this.values.length
    if (this.filled < this.values.length) this.filled++
  }

  /** Percentiles (nearest rank) of the calls recorded within the window. */
  snapshot(): LatencySnapshot {
    const since = this.clock() - this.windowMs
    const recent: number[] = []
    for (let i = 0; i < this.filled; i++) if (this.times[i]! >= since) recent.push(this.values[i]!)
    recent.sort((a, b) => a - b)
    const rank = (q: number) => (recent.length === 0 ? null : recent[Math.ceil(q * recent.length) - 1]!)
    return {
      windowMs: this.windowMs,
      count: recent.length,
      p50Ms: rank(0.5),
      p90Ms: rank(0.9),
      p99Ms: rank(0.99),
      maxMs: recent.length === 0 ? null : recent[recent.length - 1]!,
    }
  }
}
