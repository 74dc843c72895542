import { existsSync } from 'node:fs'
import { type FileHandle, mkdir, open, rename, rm } from 'node:fs/promises'
import { dirname } from 'node:path'
import { describeFsError } from './ledger-errors.js'
import { ledgerLine } from './ledger-line.js'

export {
  type GroupBy,
  ledgerFiles,
  type ReadLedgerOptions,
  readLedger,
  type SkippedLine,
  summarize,
  type UsageRow,
} from './ledger-reader.js'

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
  /** How long the call waited in its tier's queue before it was admitted (docs/queueing.md); absent when it did not wait. */
  queueMs?: number
  /** The deployment that served the call (models with `deployments`). */
  deployment?: string
  /** Deployments that failed the call before any output, before the one that served it. */
  failedDeployments?: string[]
  /** Where the counts come from: the upstream's usage, counting the text, or the estimate. */
  source: 'upstream' | 'counted' | 'estimate' | 'none'
  /** Every input token (cached and cache-written ones included). */
  promptTokens: number
  /** Every output token (reasoning included). */
  completionTokens: number
  /** Of the prompt: read from the provider's cache, written to a 5-minute / 1-hour cache. */
  cachedTokens?: number
  cacheWriteTokens?: number
  cacheWrite1hTokens?: number
  /** Of the completion: reasoning tokens. */
  reasoningTokens?: number
  /** Prompt + completion tokens charged (0 when refunded). */
  tokens: number
  /** What each kind of token cost: input neither cached nor cache-written, cache reads, cache writes, output. */
  inputUsd?: number
  cachedUsd?: number
  cacheWriteUsd?: number
  outputUsd?: number
  /** What the call cost at the price table (0 when refunded). */
  usd: number
}

/** What happens to a ledger, for logs and metrics. Every callback is optional. */
export interface LedgerObserver {
  /** A write failed (every failed attempt). */
  writeFailed?(error: Error): void
  /** The ledger went from writing to failing: records are kept in memory from now on. */
  failing?(error: Error, buffered: number): void
  /** Writes work again: the buffered records are on disk. */
  recovered?(info: { downMs: number; written: number; dropped: number }): void
  /** Records were dropped because the buffer was full (the first drop of a failing streak, then each). */
  dropped?(count: number): void
  /** Records reached the file. */
  written?(count: number): void
  /** A torn last line (a write cut short by a crash or a full disk) was closed with a newline on open. */
  repaired?(path: string): void
}

export interface LedgerHealth {
  state: 'ok' | 'failing'
  /** ms since the epoch of the last transition (or of the start). */
  since: number
  lastError: string | undefined
  /** Records waiting in memory to be written. */
  buffered: number
  /** Records dropped since the start because the buffer was full. */
  dropped: number
}

export interface LedgerOptions {
  path: string
  /** Rotate when the file would grow past this many bytes. */
  maxSize: number
  /** Rotated files kept: path.1 (newest) … path.keep. */
  keep: number
  /** Bytes of records kept in memory while the file cannot be written; beyond, records are dropped. */
  bufferBytes?: number
  /** How often a failing ledger tries again (ms). */
  retryMs?: number
}

/**
 * How long appends wait to share one write. One write per call cost the gateway ~20 % of its CPU
 * per call under load; a 20 ms window makes it one write per few dozen calls. A crash loses at
 * most this window (a clean close flushes everything).
 */
export const LEDGER_BATCH_MS = 20
/** A batch this large is written at once rather than at the end of its window. */
const LEDGER_BATCH_BYTES = 256 * 1024
export const DEFAULT_LEDGER_BUFFER_BYTES = 16 * 1024 * 1024
const DEFAULT_RETRY_MS = 1_000
const NEWLINE = 0x0a

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error))
}

function countLines(text: string): number {
  let n = 0
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) n++
  return n
}

/** Thrown by Ledger.open() when the ledger's file cannot be created or written. */
export class LedgerPathError extends Error {
  override name = 'LedgerPathError'
}

/**
 * Append-only JSONL ledger. Appends are batched for up to LEDGER_BATCH_MS into one write; the file
 * rotates by size. One process per file: instances sharing a disk should each have their own path.
 *
 * A record is never merged with another: a torn last line is closed on open, and a write cut
 * short (a full disk) is cut back to its last whole line. While writes fail, records wait in a
 * bounded buffer and are written, in order, once the disk takes them again.
 */
export class Ledger {
  private handle: FileHandle | undefined
  private size = 0
  /** Whole lines waiting for the file, oldest first. */
  private pending: string[] = []
  private pendingBytes = 0
  private pendingRecords = 0
  private timer: NodeJS.Timeout | undefined
  private retryTimer: NodeJS.Timeout | undefined
  private chain: Promise<void> = Promise.resolve()
  private closed = false
  private down = false
  private since = Date.now()
  private lastError: Error | undefined
  private droppedTotal = 0
  /** Dropped since the ledger last recovered (reported with the recovery). */
  private droppedInStreak = 0
  private readonly observers = new Set<LedgerObserver>()
  private readonly bufferBytes: number
  private readonly retryMs: number

  constructor(readonly options: LedgerOptions) {
    this.bufferBytes = options.bufferBytes ?? DEFAULT_LEDGER_BUFFER_BYTES
    this.retryMs = options.retryMs ?? DEFAULT_RETRY_MS
  }

  /** Calls `observer` on what happens from now on; returns a function that stops it. */
  observe(observer: LedgerObserver): () => void {
    this.observers.add(observer)
    return () => this.observers.delete(observer)
  }

  /** True while writes fail (records wait in the buffer). */
  get failing(): boolean {
    return this.down
  }

  health(): LedgerHealth {
    return {
      state: this.down ? 'failing' : 'ok',
      since: this.since,
      lastError: this.lastError?.message,
      buffered: this.pendingRecords,
      dropped: this.droppedTotal,
    }
  }

  /**
   * Opens the file now (creating its directory) and closes a torn last line, so that a path that
   * cannot be written fails at start-up rather than at the first call. A full disk is not a
   * start-up error: the ledger starts failing and buffers until it clears.
   * @throws LedgerPathError naming the path and the reason.
   */
  async open(): Promise<void> {
    try {
      await this.openFile()
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code
      if (code === 'ENOSPC' || code === 'EDQUOT') {
        this.onFailure(asError(error))
        return
      }
      throw new LedgerPathError(describeFsError(this.options.path, error))
    }
  }

  append(record: LedgerRecord): void {
    const line = `${ledgerLine(record)}\n`
    if (this.closed || this.pendingBytes + line.length > this.bufferBytes) {
      this.drop(1)
      return
    }
    this.pending.push(line)
    this.pendingBytes += line.length
    this.pendingRecords++
    // While failing, the retry timer writes; a write per batch would only fail again.
    if (this.down) return
    if (this.pendingBytes >= LEDGER_BATCH_BYTES) this.startWrite()
    else this.timer ??= setTimeout(() => this.startWrite(), LEDGER_BATCH_MS)
  }

  /**
   * Writes what is pending (one attempt). Resolves when it is on disk (in the OS), or when the
   * attempt failed — the records then stay buffered (see health()).
   */
  async flush(): Promise<void> {
    this.startWrite()
    await this.chain
  }

  async close(): Promise<void> {
    clearTimeout(this.retryTimer)
    await this.flush()
    this.closed = true
    clearTimeout(this.retryTimer)
    // What could not be written now is lost: count it, so that the metric and the log say so.
    if (this.pendingRecords > 0) this.drop(this.pendingRecords)
    this.pending = []
    this.pendingBytes = 0
    this.pendingRecords = 0
    await this.handle?.close().catch(() => {})
    this.handle = undefined
  }

  /** Queues a write of what is pending (after the writes before it). */
  private startWrite(): void {
    clearTimeout(this.timer)
    this.timer = undefined
    this.chain = this.chain.then(() => this.writeBatch())
  }

  private drop(count: number): void {
    this.droppedTotal += count
    this.droppedInStreak += count
    for (const o of this.observers) o.dropped?.(count)
  }

  private async writeBatch(): Promise<void> {
    if (this.pending.length === 0) return
    const text = this.pending.join('')
    const records = this.pendingRecords
    this.pending = []
    this.pendingBytes = 0
    this.pendingRecords = 0
    const buffer = Buffer.from(text)
    try {
      if (!this.handle) await this.openFile()
      if (this.size > 0 && this.size + buffer.length > this.options.maxSize) await this.rotate()
      await this.writeWholeLines(buffer)
      this.size += buffer.length
    } catch (error) {
      /** Bytes of whole lines that did reach the file. */
      const kept = error instanceof KeptError ? error.kept : 0
      const rest = buffer.subarray(kept).toString()
      const restRecords = countLines(rest)
      // Back in front of what was appended meanwhile, in order.
      this.pending.unshift(rest)
      this.pendingBytes += rest.length
      this.pendingRecords += restRecords
      if (records > restRecords) this.notifyWritten(records - restRecords)
      await this.handle?.close().catch(() => {})
      this.handle = undefined
      this.onFailure(asError(error))
      return
    }
    this.notifyWritten(records)
    if (this.down) this.onRecovered(records)
  }

  /**
   * Appends `buffer`; on failure cuts the file back to the last whole line written, so that the
   * next write starts on a line of its own, and throws a KeptError saying how many bytes of whole
   * lines did reach the file.
   */
  private async writeWholeLines(buffer: Buffer): Promise<void> {
    const handle = this.handle!
    const start = this.size
    let written = 0
    try {
      while (written < buffer.length) {
        const { bytesWritten } = await handle.write(buffer, written, buffer.length - written)
        if (bytesWritten <= 0) throw new Error('the file took no bytes')
        written += bytesWritten
      }
    } catch (error) {
      let kept = written === 0 ? 0 : buffer.lastIndexOf(NEWLINE, written - 1) + 1
      if (written > kept) {
        try {
          await handle.truncate(start + kept)
          this.size = start + kept
        } catch {
          // The torn line stays: the next open closes it with a newline. If all of it but its
          // newline got there, that newline makes it whole, so it must not be written again.
          const next = buffer.indexOf(NEWLINE, kept)
          if (next === written) kept = written + 1
        }
      } else {
        this.size = start + written
      }
      throw new KeptError(asError(error), kept)
    }
  }

  private notifyWritten(count: number): void {
    for (const o of this.observers) o.written?.(count)
  }

  private onFailure(error: Error): void {
    const kept = error instanceof KeptError ? error.cause : error
    this.lastError = kept
    for (const o of this.observers) o.writeFailed?.(kept)
    if (!this.down) {
      this.down = true
      this.since = Date.now()
      for (const o of this.observers) o.failing?.(kept, this.pendingRecords)
    }
    this.scheduleRetry()
  }

  private onRecovered(written: number): void {
    const downMs = Date.now() - this.since
    this.down = false
    this.since = Date.now()
    clearTimeout(this.retryTimer)
    this.retryTimer = undefined
    const dropped = this.droppedInStreak
    this.droppedInStreak = 0
    for (const o of this.observers) o.recovered?.({ downMs, written, dropped })
    // Appends that waited for the retry go out now.
    if (this.pending.length > 0) this.startWrite()
  }

  private scheduleRetry(): void {
    if (this.closed || this.retryTimer !== undefined) return
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined
      if (this.down && !this.closed) this.startWrite()
    }, this.retryMs)
    // A ledger waiting for its disk must not keep a process alive by itself.
    this.retryTimer.unref()
  }

  private async openFile(): Promise<void> {
    await mkdir(dirname(this.options.path), { recursive: true })
    const handle = await open(this.options.path, 'a+')
    try {
      let { size } = await handle.stat()
      if (size > 0) {
        const last = Buffer.alloc(1)
        await handle.read(last, 0, 1, size - 1)
        if (last[0] !== NEWLINE) {
          // A line cut short (a crash mid-write, an older version on a full disk): close it, so
          // that the next record does not merge with it. Readers skip the fragment and say so.
          const { bytesWritten } = await handle.write('\n')
          if (bytesWritten !== 1) throw new Error('could not close a torn last line')
          size += 1
          for (const o of this.observers) o.repaired?.(this.options.path)
        }
      }
      this.handle = handle
      this.size = size
    } catch (error) {
      await handle.close().catch(() => {})
      throw error
    }
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

/** A failed write, with the bytes of whole lines that did reach the file. */
class KeptError extends Error {
  constructor(
    override readonly cause: Error,
    readonly kept: number,
  ) {
    super(cause.message)
  }
}
