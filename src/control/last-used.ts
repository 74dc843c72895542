import { type Kysely, sql } from 'kysely'
import type { Tables } from './schema.js'

export interface LastUsedOptions {
  /** How often the recorded times are written (default 5 s). */
  intervalMs?: number
  onError?: (error: unknown) => void
}

/** Keys per UPDATE statement: 2 parameters each, far under every parameter limit. */
const PER_STATEMENT = 1000

/**
 * Records when keys were last used without a write per request: `touch` keeps the latest time
 * per key in memory, and every `intervalMs` one UPDATE … FROM (VALUES …) writes them all. A time
 * never moves backwards (two instances may write the same key).
 */
export class LastUsedRecorder {
  private pending = new Map<string, number>()
  private timer: NodeJS.Timeout | undefined
  private writing: Promise<void> = Promise.resolve()
  private closed = false

  constructor(
    private readonly db: Kysely<Tables>,
    private readonly options: LastUsedOptions = {},
  ) {}

  touch(id: string, now: number): void {
    if (this.closed) return
    const seen = this.pending.get(id)
    if (seen === undefined || seen < now) this.pending.set(id, now)
    if (this.timer === undefined) {
      this.timer = setTimeout(() => {
        this.timer = undefined
        this.flush().catch((error) => this.options.onError?.(error))
      }, this.options.intervalMs ?? 5000)
      this.timer.unref()
    }
  }

  /** Writes what was touched so far. A failed write puts its times back for the next one. */
  flush(): Promise<void> {
    const work = async () => {
      if (this.pending.size === 0) return
      const batch = [...this.pending]
      this.pending = new Map()
      try {
        await this.db.transaction().execute(async (trx) => {
          for (let i = 0; i < batch.length; i += PER_STATEMENT) {
            const values = sql.join(
              batch.slice(i, i + PER_STATEMENT).map(([id, at]) => sql`(${id}, cast(${at} as bigint))`),
            )
            // VALUES columns are column1, column2 in both SQLite and PostgreSQL.
            await sql`update keys set last_used_at = v.column2 from (values ${values}) as v
              where keys.id = v.column1 and (keys.last_used_at is null or keys.last_used_at < v.column2)`.execute(
              trx,
            )
          }
        })
      } catch (error) {
        for (const [id, at] of batch) {
          const seen = this.pending.get(id)
          if (seen === undefined || seen < at) this.pending.set(id, at)
        }
        throw error
      }
    }
    const run = this.writing.then(work, work)
    this.writing = run.catch(() => {})
    return run
  }

  async close(): Promise<void> {
    this.closed = true
    clearTimeout(this.timer)
    this.timer = undefined
    await this.flush()
  }
}
