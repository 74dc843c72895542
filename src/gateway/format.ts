import type { InspectedTier } from './inspect.js'
import type { UsageRow } from './ledger.js'

/**
 * Characters a terminal acts on instead of showing: C0 and C1 controls (ESC starts ANSI sequences,
 * CR/LF forge lines), DEL, and the Unicode line separators and bidirectional overrides that make
 * text display in another order than it reads.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g
const CONTROL_KEEPING_NEWLINES =
  // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
  /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g
const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' }

function escapeOne(c: string): string {
  const named = NAMED[c]
  if (named !== undefined) return named
  const code = c.charCodeAt(0)
  return code <= 0xff
    ? `\\x${code.toString(16).padStart(2, '0')}`
    : `\\u${code.toString(16).padStart(4, '0')}`
}

/**
 * Text from a ledger, a config or a client (model names, subjects, user ids) made safe for a
 * terminal: every control character is shown escaped ("\x1b", "\r"), so none can move the cursor,
 * recolour the screen or forge a line. `keepNewlines` keeps "\n" for messages of several lines.
 */
export function escapeControls(text: string, options: { keepNewlines?: boolean } = {}): string {
  const pattern = options.keepNewlines ? CONTROL_KEEPING_NEWLINES : CONTROL
  pattern.lastIndex = 0
  return pattern.test(text) ? text.replace(pattern, escapeOne) : text
}

/** A plain text table: columns padded, numbers right-aligned, control characters escaped. */
export function table(header: string[], cells: string[][]): string {
  const rows = cells.map((r) => r.map((c) => escapeControls(c)))
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
export function inspectTable(states: Record<string, InspectedTier>): string {
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

/** One line per tier: would a call pass now, and if not, what refuses it and until when. */
export function nextCallLines(states: Record<string, InspectedTier>): string[] {
  return Object.entries(states).map(([tier, d]) => {
    const who = escapeControls(`${tier} (${d.subject})`)
    if (d.allowed) return `${who}: a call now would pass`
    const by = d.deniedBy === 'block' ? 'the block' : `limit "${escapeControls(d.deniedBy ?? '?')}"`
    const wait = Number.isFinite(d.retryAfterMs)
      ? `for ${formatMs(d.retryAfterMs)}`
      : 'for good (the call is larger than the limit)'
    return `${who}: a call now would be refused by ${by} ${wait}`
  })
}
