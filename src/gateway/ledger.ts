import { createReadStream, existsSync } from 'node:fs'
import { type FileHandle, mkdir, open, rename, rm, stat } from 'node:fs/promises'
import { dirname } from 'node:path'
import { createInterface } from 'node:readline'

/** One settled request: who, what, how much. */
export interface LedgerRecord {
  /** ISO time of settlement. */
  time: string
  /** The subject charged (an API key's id, a user or an IP group — never a raw key). */
  subject: string
  tier: string
  model: string
  route: string
  stream: boolean
  /** HTTP status the client got. */
  status: number
  /** ok, aborted (client left), upstream_error, cut (upstream dropped mid-answer). */
  outcome: string
  /** Charged to the subject's limits; false when allow-listed or let through by shadow mode. */
  limited: boolean
  /**
   * Set when the store could not decide and the tier's outage policy admitted the call: 'open'
   * (nothing was charged to the limits) or 'local' (charged to this instance's share only).
   */
  fallback?: 'open' | 'local'
  /** Where the counts come from: the upstream's usage, counting the text, or the estimate. */
  source: 'upstream' | 'counted' | 'estimate' | 'none'
  promptTokens: number
  completionTokens: number
  /** Prompt + completion tokens charged (0 when refunded). */
  tokens: number
  /** What the call cost at the price table (0 when refunded). */
  usd: number
}

export interface LedgerOptions {
  path: string
  /** Rotate when the file would grow past this many bytes. */
  maxSize: number
  /** Rotated files kept: path.1 (newest) … path.keep. */
  keep: number
  onError?: (error: unknown) => void
}

/**
 * How long appends wait to share one write. One write per call cost the gateway ~20 % of its CPU
 * per call under load; a 20 ms window makes it one write per few dozen calls. A crash loses at
 * most this window (a clean close flushes everything).
 */
export const LEDGER_BATCH_MS = 20
/** A batch this large is written at once rather than at the end of its window. */
const LEDGER_BATCH_BYTES = 256 * 1024

/**
 * Append-only JSONL ledger. Appends are batched for up to LEDGER_BATCH_MS into one write; the file
 * rotates by size. One process per file: instances sharing a disk should each have their own path.
 */
export class Ledger {
  private handle: FileHandle | undefined
  private size = 0
  private pending: string[] = []
  private pendingBytes = 0
  private timer: NodeJS.Timeout | undefined
  private chain: Promise<void> = Promise.resolve()
  private failed = false
  private closed = false

  constructor(readonly options: LedgerOptions) {}

  append(record: LedgerRecord): void {
    if (this.closed) return
    const line = `${JSON.stringify(record)}\n`
    this.pending.push(line)
    this.pendingBytes += line.length
    if (this.pendingBytes >= LEDGER_BATCH_BYTES) this.startWrite()
    else this.timer ??= setTimeout(() => this.startWrite(), LEDGER_BATCH_MS)
  }

  /** Resolves when everything appended so far is on disk (in the OS). */
  async flush(): Promise<void> {
    this.startWrite()
    await this.chain
  }

  /** Queues a write of what is pending (after the writes before it). */
  private startWrite(): void {
    clearTimeout(this.timer)
    this.timer = undefined
    this.chain = this.chain.then(() => this.writeBatch())
  }

  async close(): Promise<void> {
    await this.flush()
    this.closed = true
    await this.handle?.close()
    this.handle = undefined
  }

  private async writeBatch(): Promise<void> {
    if (this.pending.length === 0) return
    const text = this.pending.join('')
    this.pending = []
    this.pendingBytes = 0
    const bytes = Buffer.byteLength(text)
    try {
      if (!this.handle) await this.openFile()
      if (this.size > 0 && this.size + bytes > this.options.maxSize) await this.rotate()
      await this.handle!.appendFile(text)
      this.size += bytes
      this.failed = false
    } catch (error) {
      // Report once per failure streak; keep serving (the limits in the store stay authoritative).
      if (!this.failed) this.options.onError?.(error)
      this.failed = true
      await this.handle?.close().catch(() => {})
      this.handle = undefined
    }
  }

  private async openFile(): Promise<void> {
    await mkdir(dirname(this.options.path), { recursive: true })
    this.handle = await open(this.options.path, 'a')
    this.size = (await this.handle.stat()).size
  }

  private async rotate(): Promise<void> {
    await this.handle?.close()
    this.handle = undefined
    const { path, keep } = this.options
    await rm(`${path}.${keep}`, { force: true })
    for (let i = keep - 1; i >= 1; i--) {
      if (existsSync(`${path}.${i}`)) await rename(`${path}.${i}`, `${path}.${i + 1}`)
    }
    await rename(path, `${path}.1`)
    await this.openFile()
  }
}

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

/** Reads ledger records (current and rotated files), skipping lines that are not records. */
export async function* readLedger(path: string, since?: Date): AsyncGenerator<LedgerRecord> {
  const after = since?.getTime() ?? Number.NEGATIVE_INFINITY
  for (const file of await ledgerFiles(path)) {
    const lines = createInterface({
      input: createReadStream(file, 'utf8'),
      crlfDelay: Number.POSITIVE_INFINITY,
    })
    for await (const line of lines) {
      if (line.trim() === '') continue
      let record: LedgerRecord
      try {
        record = JSON.parse(line) as LedgerRecord
      } catch {
        continue
      }
      if (typeof record !== 'object' || record === null || typeof record.time !== 'string') continue
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
