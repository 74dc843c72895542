import { LatencySamples, median, percentiles } from './latency.js'
import type { Measure } from './types.js'

/** One synchronous decision for the key with this index: true when allowed. */
export type SyncOperation = (key: number) => boolean

/**
 * Runs `op` in a plain loop (no promises, nothing in flight) for `durationMs`, checking the clock
 * every 1,024 ops and timing one op in `sampleEvery`. For APIs that answer at once, such as
 * Limiter.consumeSync: its figures are not comparable with the lanes of `drive`.
 */
export function syncLoop(
  op: SyncOperation,
  options: { durationMs: number; keys: number; sampleEvery: number },
): { ops: number; allowed: number; elapsedMs: number; latencies: LatencySamples } {
  const { durationMs, keys, sampleEvery } = options
  const latencies = new LatencySamples()
  const start = performance.now()
  const deadline = start + durationMs
  let ops = 0
  let allowed = 0
  let key = 0
  let now = start
  while (now < deadline) {
    for (let i = 0; i < 1024; i++) {
      const timed = i % sampleEvery === 0
      const t0 = timed ? performance.now() : 0
      if (op(key)) allowed++
      if (timed) latencies.add(performance.now() - t0)
      key = key + 1 === keys ? 0 : key + 1
    }
    ops += 1024
    now = performance.now()
  }
  return { ops, allowed, elapsedMs: now - start, latencies }
}

/** `rounds` warm-up + measured turns of syncLoop, as one Measure (median rate, merged latencies). */
export function measureSyncLoop(
  name: string,
  make: () => SyncOperation,
  options: { rounds: number; warmupMs: number; durationMs: number; keys: number; sampleEvery: number },
): Measure {
  const rates: number[] = []
  const latencies = new LatencySamples()
  let ops = 0
  let allowed = 0
  for (let round = 0; round < options.rounds; round++) {
    const op = make()
    syncLoop(op, { ...options, durationMs: options.warmupMs })
    const result = syncLoop(op, options)
    rates.push((result.ops * 1000) / result.elapsedMs)
    latencies.addAll(result.latencies.toArray())
    ops += result.ops
    allowed += result.allowed
  }
  const { p50Ms, p99Ms } = percentiles(latencies)
  return { name, opsPerSec: median(rates), roundsOpsPerSec: rates, p50Ms, p99Ms, allowedShare: allowed / ops }
}
