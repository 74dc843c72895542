import type { Decision } from '../limiter.js'
import type { UsageRow } from './ledger.js'

/** A plain text table: columns padded, numbers right-aligned. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const numeric = header.map((_, i) => rows.length > 0 && rows.every((r) => /^[-\d.,$]+$/.test(r[i]!)))
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd()
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n')
}

export function formatUsd(usd: number): string {
  return `$${usd < 0.01 && usd > 0 ? usd.toFixed(6) : usd.toFixed(4)}`
}

export function formatInt(n: number): string {
  return Math.round(n).toLocaleString('en-US')
}

export function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return 'never'
  if (ms < 1000) return `${Math.ceil(ms)}ms`
  const s = Math.ceil(ms / 1000)
  if (s < 120) return `${s}s`
  if (s < 7200) return `${Math.round(s / 60)}m`
  return `${(s / 3600).toFixed(1)}h`
}

export function usageTable(rows: UsageRow[], groupName: string): string {
  const total = rows.reduce(
    (t, r) => ({
      requests: t.requests + r.requests,
      promptTokens: t.promptTokens + r.promptTokens,
      completionTokens: t.completionTokens + r.completionTokens,
      tokens: t.tokens + r.tokens,
      usd: t.usd + r.usd,
    }),
    { requests: 0, promptTokens: 0, completionTokens: 0, tokens: 0, usd: 0 },
  )
  const cells = (group: string, r: Omit<UsageRow, 'group'>) => [
    group,
    formatInt(r.requests),
    formatInt(r.promptTokens),
    formatInt(r.completionTokens),
    formatInt(r.tokens),
    formatUsd(r.usd),
  ]
  return table(
    [groupName, 'requests', 'prompt', 'completion', 'tokens', 'usd'],
    [...rows.map((r) => cells(r.group, r)), ...(rows.length > 1 ? [cells('total', total)] : [])],
  )
}

/** The state of every limit of a subject in each tier, as `sluice inspect` prints it. */
export function inspectTable(states: Record<string, Decision>): string {
  const rows: string[][] = []
  for (const [tier, d] of Object.entries(states)) {
    for (const l of d.limits) {
      const remaining = l.unit === 'usd' ? formatUsd(l.remaining) : formatInt(l.remaining)
      const limit = l.unit === 'usd' ? formatUsd(l.limit) : formatInt(l.limit)
      rows.push([
        tier,
        l.name,
        l.unit,
        l.kind,
        limit,
        remaining,
        l.remaining >= l.limit ? 'full' : formatMs(l.resetMs),
      ])
    }
    if (d.blocked) rows.push([tier, '(blocked)', '', '', '', '', formatMs(d.retryAfterMs)])
  }
  return table(['tier', 'limit', 'unit', 'kind', 'max', 'remaining', 'full in'], rows)
}
