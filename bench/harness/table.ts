import { formatRate } from './progress.js'
import { spread } from './rows.js'
import type { Measure, MemoryRow, ScalingRow, ThroughputRow, Unavailable } from './types.js'

/** A Markdown table (so that it can be pasted into docs as it is), columns padded for the terminal. */
export function markdownTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`
  return [line(header), `|${widths.map((w) => ` ${'-'.repeat(w)} `).join('|')}|`, ...rows.map(line)].join(
    '\n',
  )
}

/** ops/s with the spread of the rounds, e.g. "2.11M ±8%": a wide spread means a noisy machine. */
function rate(m: Measure): string {
  const s = spread(m)
  return s > 0 ? `${formatRate(m.opsPerSec)} ±${(s * 100).toFixed(0)}%` : formatRate(m.opsPerSec)
}

function ms(x: number): string {
  if (!Number.isFinite(x)) return '—'
  if (x < 0.01) return x.toPrecision(2)
  return x < 1 ? x.toFixed(3) : x < 100 ? x.toFixed(2) : x.toFixed(0)
}

function latency(m: Measure | undefined): string {
  return m ? `${ms(m.p50Ms)} / ${ms(m.p99Ms)}` : '—'
}

export function ratio(x: number | undefined): string {
  return x === undefined || !Number.isFinite(x) ? '—' : `${x.toFixed(2)}×`
}

export function throughputTable(rows: ThroughputRow[]): string {
  const body: string[][] = []
  for (const row of rows) {
    const best = row.peers.reduce<Measure | undefined>(
      (b, m) => (b && b.opsPerSec >= m.opsPerSec ? b : m),
      undefined,
    )
    const baseline = row.baseline && { ...row.baseline, name: `${row.baseline.name} (baseline)` }
    const peers = best ? [best, ...row.peers.filter((p) => p !== best)] : [baseline]
    peers.forEach((peer, i) => {
      const first = i === 0
      body.push([
        first ? row.workload : '',
        first ? (row.sluice ? rate(row.sluice) : 'not available') : '',
        peer?.name ?? '—',
        peer ? rate(peer) : '—',
        first ? ratio(row.ratio) : '',
        first ? latency(row.sluice) : '',
        latency(peer),
        first ? (row.note ?? '') : '',
      ])
    })
  }
  return markdownTable(
    [
      'workload',
      'sluice ops/s',
      'peer',
      'peer ops/s',
      'sluice ÷ best peer (or baseline)',
      'sluice p50 / p99 ms',
      'peer p50 / p99 ms',
      'notes',
    ],
    body,
  )
}

export function scalingTable(rows: ScalingRow[]): string {
  return markdownTable(
    [
      'client processes',
      'sluice RedisStore decisions/s',
      `${rows[0]?.peer.name ?? 'peer'} decisions/s`,
      'sluice ÷ peer',
      'sluice p50 / p99 ms',
      'peer p50 / p99 ms',
    ],
    rows.map((r) => [
      String(r.processes),
      rate(r.sluice),
      rate(r.peer),
      ratio(r.ratio),
      latency(r.sluice),
      latency(r.peer),
    ]),
  )
}

function bytes(x: number): string {
  return Number.isFinite(x) ? `${x.toFixed(0)} B` : '—'
}

export function memoryTable(rows: MemoryRow[]): string {
  return markdownTable(
    ['memory', 'sluice', 'peer', 'peer', 'best peer ÷ sluice', 'notes'],
    rows.map((r) => [
      r.what,
      `${bytes(r.sluice)} ${r.unit}`,
      r.peer,
      `${bytes(r.peerBytes)} ${r.unit}`,
      ratio(r.ratio),
      r.note ?? '',
    ]),
  )
}

export function unavailableTable(rows: Unavailable[]): string {
  return markdownTable(
    ['workload', 'not available because'],
    rows.map((r) => [r.workload, r.reason]),
  )
}
