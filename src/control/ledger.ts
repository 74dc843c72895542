import type { Insertable } from 'kysely'
import { ControlInputError } from './errors.js'
import type { LedgerInsert } from './ledger-insert.js'
import { type LedgerEntry, ledgerInsertOf } from './ledger-rows.js'
import type { LedgerTable } from './schema.js'

export interface LedgerWriterOptions {
  /** Rows held in memory at most; appends beyond are dropped and counted (default 100,000). */
  maxBuffered?: number
  /** Rows written per transaction (default: 250 on SQLite, 1,000 on PostgreSQL). */
  batchRows?: number
  /** Longest a row waits for its batch (default 100 ms). */
  intervalMs?: number
  /** Backoff between attempts while the database fails (default 100 ms doubling to 5 s). */
  retry?: { minMs?: number; maxMs?: number }
  /** How long close() keeps trying to write what is left (default 10 s). */
  closeTimeoutMs?: number
  clock?: () => number
  /** Every failed batch (for a metric); its rows stay buffered and are tried again. */
  onBatchFailed?: (error: unknown, rows: number) => void
  /** Once per transition (for a log line): 'down' at the first failure, 'up' at the next success. */
  onStateChange?: (state: 'up' | 'down', error?: unknown) => void
}

export interface LedgerWriterStats {
  /** Rows waiting in memory. */
  buffered: number
  /** Rows committed to the database. */
  written: number
  /** Rows dropped: the buffer was full, or they were appended after close / not written by it. */
  dropped: number
  failedBatches: number
  state: 'up' | 'down' | 'closed'
}

/**
 * The request ledger's writer. `append` is synchronous and O(1): it checks the entry and pushes it
 * to a bounded in-memory buffer. A background flusher writes the buffer in batches — each batch one
 * transaction (ledger-insert.ts) — every `intervalMs` or as soon as `batchRows` are waiting. A
 * failed batch goes back to the head of the buffer and is retried with backoff; while the database
 * stays down the buffer fills up and further rows are dropped (counted in `stats().dropped`).
 */
export class LedgerWriter {
  private buffer: Insertable<LedgerTable>[] = []
  /** Rows of the batch being written (out of the buffer, not yet committed). */
  private inFlight = 0
  private accepted = 0
  private written = 0
  private dropped = 0
  private failedBatches = 0
  private state: 'up' | 'down' | 'closed' = 'up'
  private timer: NodeJS.Timeout | undefined
  private timerDue = 0
  private backoffMs = 0
  private busy: Promise<unknown> = Promise.resolve()
  private readonly maxBuffered: number
  private readonly batchRows: number
  private readonly intervalMs: number
  private readonly clock: () => number

  constructor(
    private readonly insert: LedgerInsert,
    private readonly options: LedgerWriterOptions & { defaultBatchRows?: number } = {},
  ) {
    this.maxBuffered = positiveInt(options.maxBuffered, 100_000, 'maxBuffered')
    this.batchRows = positiveInt(options.batchRows, options.defaultBatchRows ?? 1000, 'batchRows')
    this.intervalMs = positiveInt(options.intervalMs, 100, 'intervalMs')
    this.clock = options.clock ?? Date.now
  }

  /** Queues one row. Throws (naming the field) for a malformed entry; never waits. */
  append(entry: LedgerEntry): void {
    const row = ledgerInsertOf(entry, this.clock())
    if (this.state === 'closed' || this.buffer.length >= this.maxBuffered) {
      this.dropped++
      return
    }
    this.buffer.push(row)
    this.accepted++
    this.schedule(this.buffer.length >= this.batchRows ? 0 : this.intervalMs)
  }

  /** Writes every row appended so far; rejects if the database fails (the rows stay queued). */
  flush(): Promise<void> {
    const target = this.accepted
    return this.exclusive(async () => {
      while (this.written < target && this.buffer.length > 0) {
        await this.writeBatch()
        if (this.buffer.length > 0) await yieldToRequests()
      }
    })
  }

  /**
   * Stops accepting rows and writes what is buffered, retrying for up to `closeTimeoutMs`. Rows it
   * could not write are counted as dropped. Resolves with the final figures.
   */
  async close(): Promise<LedgerWriterStats> {
    if (this.state === 'closed') return this.stats()
    const deadline = Date.now() + (this.options.closeTimeoutMs ?? 10_000)
    this.state = 'closed'
    clearTimeout(this.timer)
    this.timer = undefined
    for (;;) {
      try {
        await this.exclusive(async () => {
          while (this.buffer.length > 0) await this.writeBatch()
        })
        break
      } catch {
        const wait = Math.min(this.backoffMs, deadline - Date.now())
        if (wait <= 0) break
        await new Promise((r) => setTimeout(r, wait))
      }
    }
    this.dropped += this.buffer.length
    this.buffer = []
    return this.stats()
  }

  stats(): LedgerWriterStats {
    return {
      buffered: this.buffer.length + this.inFlight,
      written: this.written,
      dropped: this.dropped,
      failedBatches: this.failedBatches,
      state: this.state,
    }
  }

  /** Arms the flush timer to fire within `delayMs` (never earlier than a pending retry). */
  private schedule(delayMs: number): void {
    if (this.state === 'closed') return
    const due = Date.now() + Math.max(delayMs, this.state === 'down' ? this.backoffMs : 0)
    if (this.timer !== undefined && this.timerDue <= due) return
    clearTimeout(this.timer)
    this.timerDue = due
    this.timer = setTimeout(() => this.background(), Math.max(0, due - Date.now()))
    this.timer.unref?.()
  }

  private background(): void {
    this.timer = undefined
    this.exclusive(async () => {
      while (this.buffer.length > 0 && this.state !== 'closed') {
        await this.writeBatch()
        if (this.buffer.length > 0) await yieldToRequests()
      }
    }).then(
      () => {
        if (this.buffer.length > 0) this.schedule(this.intervalMs)
      },
      () => this.schedule(this.backoffMs),
    )
  }

  /** One writer at a time: batches commit in append order. */
  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.busy.then(work, work)
    this.busy = run.catch(() => {})
    return run
  }

  private async writeBatch(): Promise<void> {
    const batch = this.buffer.splice(0, this.batchRows)
    if (batch.length === 0) return
    this.inFlight = batch.length
    try {
      await this.insert(batch)
    } catch (error) {
      this.inFlight = 0
      this.buffer = batch.concat(this.buffer)
      this.failedBatches++
      this.nextBackoff()
      this.options.onBatchFailed?.(error, batch.length)
      if (this.state === 'up') {
        this.state = 'down'
        this.options.onStateChange?.('down', error)
      }
      throw error
    }
    this.inFlight = 0
    this.written += batch.length
    this.backoffMs = 0
    if (this.state === 'down') {
      this.state = 'up'
      this.options.onStateChange?.('up')
    }
  }

  private nextBackoff(): number {
    const min = this.options.retry?.minMs ?? 100
    const max = this.options.retry?.maxMs ?? 5000
    this.backoffMs = this.backoffMs === 0 ? min : Math.min(max, this.backoffMs * 2)
    return this.backoffMs
  }
}

/** Lets requests in between batches: on SQLite each batch holds the event loop while it runs. */
function yieldToRequests(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}

function positiveInt(value: unknown, fallback: number, field: string): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new ControlInputError(field, 'must be a whole number ≥ 1', value)
  }
  return value
}
