import type { Kysely } from 'kysely'
import type { Dialect } from '../db.js'

/** One row per request. Integer ids from a sequence: keyset pagination orders by (time, id). */
export function ledgerMigration(dialect: Dialect) {
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      const table =
        dialect === 'postgres'
          ? db.schema.createTable('ledger').addColumn('id', 'bigserial', (c) => c.primaryKey())
          : // The rowid itself: no AUTOINCREMENT bookkeeping on the hottest insert.
            db.schema.createTable('ledger').addColumn('id', 'integer', (c) => c.primaryKey())
      await table
        .addColumn('time', 'bigint', (c) => c.notNull())
        .addColumn('request_id', 'text')
        .addColumn('key_id', 'text')
        .addColumn('team_id', 'text')
        .addColumn('user_id', 'text')
        .addColumn('tier', 'text')
        .addColumn('subject', 'text')
        .addColumn('model', 'text')
        .addColumn('upstream', 'text')
        .addColumn('deployment', 'text')
        .addColumn('route', 'text')
        .addColumn('stream', 'integer', (c) => c.notNull())
        .addColumn('status', 'integer', (c) => c.notNull())
        .addColumn('outcome', 'text', (c) => c.notNull())
        .addColumn('reason', 'text')
        .addColumn('limited', 'integer', (c) => c.notNull())
        .addColumn('source', 'text')
        .addColumn('prompt_tokens', 'bigint', (c) => c.notNull())
        .addColumn('cached_tokens', 'bigint', (c) => c.notNull())
        .addColumn('cache_write_tokens', 'bigint', (c) => c.notNull())
        .addColumn('completion_tokens', 'bigint', (c) => c.notNull())
        .addColumn('reasoning_tokens', 'bigint', (c) => c.notNull())
        .addColumn('tokens', 'bigint', (c) => c.notNull())
        .addColumn('usd', 'double precision', (c) => c.notNull())
        .addColumn('usd_input', 'double precision', (c) => c.notNull())
        .addColumn('usd_cached', 'double precision', (c) => c.notNull())
        .addColumn('usd_cache_write', 'double precision', (c) => c.notNull())
        .addColumn('usd_output', 'double precision', (c) => c.notNull())
        .addColumn('latency_ms', 'double precision', (c) => c.notNull())
        .addColumn('fallback', 'text')
        .execute()
      // Two indexes only: every index is paid on every insert, on the gateway's event loop with
      // SQLite (team and user indexes made a row markedly dearer to write). Time ranges
      // (totals, pages, retention, rebuilding all budgets at start) use the first; one key's rows
      // and spend the second. A team's or a user's rows are found by scanning the time range.
      await db.schema.createIndex('ledger_time').on('ledger').columns(['time', 'id']).execute()
      await db.schema.createIndex('ledger_key_time').on('ledger').columns(['key_id', 'time']).execute()
    },
  }
}
