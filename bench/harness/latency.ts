/**
 * Latency samples in milliseconds, kept raw (not bucketed) so that samples from several rounds or
 * processes merge exactly; percentiles come from a sort at the end.
 */
export class LatencySamples {
  private chunks: Float64Array[] = []
  private current = new Float64Array(65_536)
  private used = 0

  add(ms: number): void {
    if (this.used === this.current.length) {
      this.chunks.push(this.current)
      this.current = new Float64Array(65_536)
      this.used = 0
    }
    this.current[this.used++] = ms
  }

  get count(): number {
    return this.chunks.length * 65_536 + this.used
  }

  /** All samples in one array (a copy). */
  toArray(): Float64Array {
    const all = new Float64Array(this.count)
    let offset = 0
    for (const chunk of this.chunks) {
      all.set(chunk, offset)
      offset += chunk.length
    }
    all.set(this.current.subarray(0, this.used), offset)
    return all
  }

  addAll(values: ArrayLike<number>): void {
    for (let i = 0; i < values.length; i++) this.add(values[i]!)
  }
}

export interface Percentiles {
  p50Ms: number
  p99Ms: number
  samples: number
}

/** Nearest-rank percentiles of the samples (NaN when there are none). */
export function percentiles(samples: LatencySamples | Float64Array): Percentiles {
  const sorted = (samples instanceof LatencySamples ? samples.toArray() : Float64Array.from(samples)).sort()
  const at = (q: number) =>
    sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!
  return { p50Ms: at(0.5), p99Ms: at(0.99), samples: sorted.length }
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN
  const s = [...values].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}
