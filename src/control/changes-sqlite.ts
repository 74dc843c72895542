import type { Kysely } from 'kysely'
import { type ChangeFeed, type ChangeFeedEvents, type ChangeListener, Listeners } from './changes.js'
import type { Tables } from './schema.js'

export interface PollingFeedOptions extends ChangeFeedEvents {
  /** How often the `changes` table is read (default 250 ms). */
  intervalMs?: number
  onError?: (error: unknown) => void
}

const PAGE = 1000

/**
 * SQLite's change feed: every `intervalMs` one indexed read of the `changes` rows past the last
 * sequence number seen. SQLite has one writer at a time, so sequence numbers commit in order and
 * the cursor never skips a row; a jump in the numbers means old rows were pruned while this feed
 * lagged, and it says `{ kind: 'all' }`.
 */
export class PollingChangeFeed implements ChangeFeed {
  private readonly listeners: Listeners
  private last: number | undefined
  private timer: NodeJS.Timeout | undefined
  private started: Promise<void> | undefined
  private polling: Promise<void> = Promise.resolve()
  private current: ChangeFeed['state'] = 'idle'
  private readonly intervalMs: number

  constructor(
    private readonly db: Kysely<Tables>,
    private readonly options: PollingFeedOptions = {},
  ) {
    this.intervalMs = options.intervalMs ?? 250
    this.listeners = new Listeners((e) => options.onError?.(e))
  }

  get state(): ChangeFeed['state'] {
    return this.current
  }

  subscribe(listener: ChangeListener): () => void {
    const off = this.listeners.add(listener)
    void this.ready().catch(() => {})
    return off
  }

  ready(): Promise<void> {
    if (this.current === 'closed') return Promise.reject(new Error('the change feed is closed'))
    this.started ??= this.start()
    return this.started
  }

  private async start(): Promise<void> {
    // Retry until the cursor is taken: a feed that never starts would deliver nothing, silently.
    for (;;) {
      if (this.current === 'closed') return
      try {
        const row = await this.db
          .selectFrom('changes')
          .select((eb) => eb.fn.max('seq').as('seq'))
          .executeTakeFirst()
        this.last = Number(row?.seq ?? 0)
        this.transition('up')
        this.schedule()
        return
      } catch (error) {
        this.transition('down', error)
        await new Promise((r) => setTimeout(r, this.intervalMs).unref())
      }
    }
  }

  private schedule(): void {
    if (this.current === 'closed') return
    this.timer = setTimeout(() => {
      this.polling = this.poll().finally(() => this.schedule())
    }, this.intervalMs)
    this.timer.unref()
  }

  /** Reads the changes now, without waiting for the next interval. */
  pollNow(): Promise<void> {
    const run = this.polling.then(() => this.poll())
    this.polling = run
    return run
  }

  private async poll(): Promise<void> {
    try {
      for (;;) {
        const rows = await this.db
          .selectFrom('changes')
          .select(['seq', 'kind', 'entity_id'])
          .where('seq', '>', this.last ?? 0)
          .orderBy('seq')
          .limit(PAGE)
          .execute()
        this.transition('up')
        if (this.current === 'closed') return
        if (rows.length > 0 && Number(rows[0]!.seq) > (this.last ?? 0) + 1)
          this.listeners.emit({ kind: 'all' })
        for (const row of rows) {
          this.last = Number(row.seq)
          if (row.kind === 'key' || row.kind === 'team' || row.kind === 'user') {
            this.listeners.emit({ kind: row.kind, id: row.entity_id })
          }
        }
        if (rows.length < PAGE) return
      }
    } catch (error) {
      this.transition('down', error)
    }
  }

  private transition(to: 'up' | 'down', error?: unknown): void {
    if (this.current === to || this.current === 'closed') return
    const first = this.current === 'idle' && to === 'up'
    this.current = to
    if (!first) this.options.onStateChange?.(to, error)
  }

  async close(): Promise<void> {
    this.current = 'closed'
    clearTimeout(this.timer)
    await this.polling
  }
}
