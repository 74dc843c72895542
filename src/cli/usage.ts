/** `sluice usage`: sums of the usage ledger, per subject, tier, model, route or outcome. */
import { stat } from 'node:fs/promises'
import { resolve } from 'node:path'
import { parseDuration } from '../gateway/config/values.js'
import { escapeControls, usageTable } from '../gateway/format.js'
import {
  type GroupBy,
  type LedgerRecord,
  ledgerFiles,
  readLedger,
  type SkippedLine,
  summarize,
} from '../gateway/ledger.js'
import { databaseUsage, usesDatabase } from './control.js'
import { type CliIo, configFrom, UsageError } from './io.js'

const GROUPS: GroupBy[] = ['subject', 'tier', 'model', 'route', 'outcome']
/** Skipped lines named one by one; beyond, only counted. */
const SKIPPED_SHOWN = 5

/** Thrown when there is no ledger to read: exit code 1. */
export class NoLedgerError extends Error {}

function sinceOf(values: Record<string, unknown>): number {
  const sinceText = (values.since as string | undefined) ?? '24h'
  const sinceMs = sinceText === 'all' ? Number.POSITIVE_INFINITY : parseDuration(sinceText)
  if (sinceMs === undefined || !(sinceMs > 0)) {
    throw new UsageError(`--since must be a duration such as 30m, 1h, 7d, or "all", got "${sinceText}"`)
  }
  return sinceMs
}

export async function usageCommand(values: Record<string, unknown>, io: CliIo): Promise<number> {
  let path = values.ledger as string | undefined
  if (path === undefined) {
    const { config } = configFrom(values.config as string | undefined, io)
    if (usesDatabase(config, io.cwd)) return databaseUsage(values, io, sinceOf(values))
    if (config.ledger.path === false)
      throw new UsageError('the ledger is off in this config; pass --ledger <path>')
    path = config.ledger.path
  }
  const sinceMs = sinceOf(values)
  const by = ((values.by as string | undefined) ?? 'subject') as GroupBy
  if (!GROUPS.includes(by)) throw new UsageError(`--by must be one of ${GROUPS.join(', ')}, got "${by}"`)
  const where = resolve(io.cwd, path)
  if ((await ledgerFiles(where)).length === 0) {
    const kind = await stat(where).then(
      (s) => (s.isDirectory() ? 'a directory, not a ledger file' : 'not a file'),
      () => 'missing',
    )
    throw new NoLedgerError(`no ledger at ${where} (${kind}, and no rotated files ${path}.1 …)`)
  }
  const since = Number.isFinite(sinceMs) ? new Date(Date.now() - sinceMs) : undefined
  const records: LedgerRecord[] = []
  const skipped: SkippedLine[] = []
  for await (const r of readLedger(where, since, { onSkip: (s) => skipped.push(s) })) records.push(r)
  const rows = summarize(records, by)
  if (values.json) {
    // JSON escapes control characters itself.
    io.out(JSON.stringify({ since: since?.toISOString() ?? null, by, rows, skipped }, null, 2))
  } else if (rows.length === 0) {
    io.out(escapeControls(`no usage recorded${since ? ` since ${since.toISOString()}` : ''} in ${path}`))
  } else {
    io.out(escapeControls(`usage since ${since ? since.toISOString() : 'the start of the ledger'} (${path})`))
    io.out(usageTable(rows, by))
  }
  if (skipped.length > 0 && !values.json) {
    io.err(
      escapeControls(
        `skipped ${skipped.length} line${skipped.length === 1 ? '' : 's'} that hold no whole record: ${skipped
          .slice(0, SKIPPED_SHOWN)
          .map((s) => `${s.file}:${s.line} (${s.reason})`)
          .join('; ')}${skipped.length > SKIPPED_SHOWN ? '; …' : ''}`,
      ),
    )
  }
  return 0
}
