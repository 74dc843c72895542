import { median } from './latency.js'
import type { Measure, ThroughputRow } from './types.js'

/** A main-table row: the first measure is sluice (undefined when it cannot run yet), the rest are peers. */
export function throughputRow(
  id: string,
  workload: string,
  measures: (Measure | undefined)[],
  options: {
    unit?: string
    note?: string
    baseline?: Measure
    references?: Measure[]
    others?: Measure[]
  } = {},
): ThroughputRow {
  const [sluice, ...rest] = measures
  const peers = rest.filter((m): m is Measure => m !== undefined)
  const best = peers.reduce<Measure | undefined>(
    (b, m) => (b && b.opsPerSec >= m.opsPerSec ? b : m),
    undefined,
  )
  const row: ThroughputRow = { id, workload, unit: options.unit ?? 'decisions/s', sluice, peers }
  const against = best ?? options.baseline
  if (sluice && against) row.ratio = pairedRatio(sluice, against)
  if (options.note) row.note = options.note
  if (options.baseline) row.baseline = options.baseline
  if (options.references?.length) row.references = options.references
  if (options.others?.length) row.others = options.others
  return row
}

/** Notes a share of allowed decisions that is not what the row expects (a sign of a bad setup). */
export function allowedNote(measures: Measure[], expected: 'all' | 'none'): string | undefined {
  const off = measures.filter((m) =>
    expected === 'all' ? (m.allowedShare ?? 1) < 1 : (m.allowedShare ?? 0) > 0,
  )
  if (off.length === 0) return undefined
  return `unexpected: ${off.map((m) => `${m.name} allowed ${((m.allowedShare ?? 0) * 100).toFixed(2)} %`).join(', ')}`
}

/**
 * sluice ÷ other as the median of per-round ratios: the two ran back to back in each round, so a
 * machine that slows down between rounds moves both sides of a ratio together.
 */
export function pairedRatio(a: Measure, b: Measure): number {
  const n = Math.min(a.roundsOpsPerSec.length, b.roundsOpsPerSec.length)
  if (n === 0) return a.opsPerSec / b.opsPerSec
  return median(Array.from({ length: n }, (_, i) => a.roundsOpsPerSec[i]! / b.roundsOpsPerSec[i]!))
}

/** Half the range of the rounds relative to their median, e.g. 0.08 for ±8 % (0 with one round). */
export function spread(m: Measure): number {
  const r = m.roundsOpsPerSec
  if (r.length < 2) return 0
  return (Math.max(...r) - Math.min(...r)) / 2 / median(r)
}
