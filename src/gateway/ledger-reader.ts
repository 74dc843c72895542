import { createReadStream, existsSync } from 'node:fs'
import { stat } from 'node:fs/promises'
import { createInterface } from 'node:readline'
import type { LedgerRecord } from './ledger.js'

/** The ledger's files, oldest first: path.N … path.1, path. */
export async function ledgerFiles(path: string): Promise<string[]> {
  const files: string[] = []
  for (let i = 1; ; i++) {
    const rotated = `${path}.${i}`
    if (!existsSync(rotated)) break
    files.unshift(rotated)
  }
  if (existsSync(path) && (await stat(path)).isFile()) files.push(path)
  return files
}

/** A line of a ledger file that holds no record. */
export interface SkippedLine {
  file: string
  /** 1-based. */
  line: number
  reason: string
}

export interface ReadLedgerOptions {
  /** Called for every non-empty line that is not a record (a torn write, a foreign line). */
  onSkip?: (skipped: SkippedLine) => void
}

const NUMBER_FIELDS = ['promptTokens', 'completionTokens', 'tokens', 'usd'] as const
const STRING_FIELDS = ['time', 'subject', 'tier', 'model', 'route', 'outcome'] as const

/** Whether a parsed line has the fields usage sums read, with the right types. */
export function isLedgerRecord(value: unknown): value is LedgerRecord {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false
  const r = value as Record<string, unknown>
  for (const f of STRING_FIELDS) if (typeof r[f] !== 'string') return false
  for (const f of NUMBER_FIELDS) if (typeof r[f] !== 'number' || !Number.isFinite(r[f])) return false
  return !Number.isNaN(Date.parse(r.time as string))
}

function parseRecord(text: string): LedgerRecord | undefined {
  try {
    const value: unknown = JSON.parse(text)
    return isLedgerRecord(value) ? value : undefined
  } catch {
    return undefined
  }
}

/** Where a record starts inside a line that also holds a torn fragment before it. */
const RECORD_START = '{"time":'

/**
 * Reads ledger records (current and rotated files), oldest first. Lines that are not records are
 * skipped and reported to `onSkip`. A line where a torn write was followed by a whole record on
 * the same line (what versions before the tail repair wrote) yields that record, and the fragment
 * is reported.
 */
export async function* readLedger(
  path: string,
  since?: Date,
  options: ReadLedgerOptions = {},
): AsyncGenerator<LedgerRecord> {
  const after = since?.getTime() ?? Number.NEGATIVE_INFINITY
  for (const file of await ledgerFiles(path)) {
    const lines = createInterface({
      input: createReadStream(file, 'utf8'),
      crlfDelay: Number.POSITIVE_INFINITY,
    })
    let n = 0
    for await (const line of lines) {
      n++
      if (line.trim() === '') continue
      let record = parseRecord(line)
      if (record === undefined) {
        const start = line.lastIndexOf(RECORD_START)
        record = start > 0 ? parseRecord(line.slice(start)) : undefined
        options.onSkip?.({
          file,
          line: n,
          reason:
            record !== undefined
              ? `a torn record (${start} bytes) before a whole one, which is kept`
              : line.startsWith('{')
                ? 'not a whole ledger record (a torn write?)'
                : 'not JSON',
        })
        if (record === undefined) continue
      }
      if (Date.parse(record.time) >= after) yield record
    }
  }
}

export type GroupBy = 'subject' | 'tier' | 'model' | 'route' | 'outcome'

export interface UsageRow {
  group: string
  requests: number
  promptTokens: number
  completionTokens: number
  tokens: number
  usd: number
}

/** Sums records per group, biggest spenders first. */
export function summarize(records: Iterable<LedgerRecord>, by: GroupBy): UsageRow[] {
  const rows = new Map<string, UsageRow>()
  for (const r of records) {
    const group = String(r[by] ?? '')
    let row = rows.get(group)
    if (!row) {
      row = { group, requests: 0, promptTokens: 0, completionTokens: 0, tokens: 0, usd: 0 }
      rows.set(group, row)
    }
    row.requests++
    row.promptTokens += r.promptTokens
    row.completionTokens += r.completionTokens
    row.tokens += r.tokens
    row.usd += r.usd
  }
  return [...rows.values()].sort(
    (a, b) => b.usd - a.usd || b.tokens - a.tokens || a.group.localeCompare(b.group),
  )
}
