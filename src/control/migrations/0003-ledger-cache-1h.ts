import type { Kysely } from 'kysely'

/**
 * Cache writes priced apart: Anthropic bills a write to its 1-hour cache above one to the
 * 5-minute cache, so the ledger keeps the two counts apart (`cache_write_tokens` holds the
 * 5-minute writes). Rows written before this version had no 1-hour count: they read 0.
 */
export function ledgerCache1hMigration() {
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      // ADD COLUMN … NOT NULL DEFAULT 0: both SQLite and PostgreSQL fill existing rows without a rewrite.
      await db.schema
        .alterTable('ledger')
        .addColumn('cache_write_1h_tokens', 'bigint', (c) => c.notNull().defaultTo(0))
        .execute()
    },
  }
}
