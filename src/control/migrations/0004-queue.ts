import type { Kysely } from 'kysely'

/**
 * Queueing (docs/queueing.md) in the control plane: the ledger records how long a request waited
 * in a queue (`queue_ms`, null when it did not wait), and a key may carry queue settings of its
 * own over its tier's (`queue`, JSON text; null: the tier's).
 */
export function queueMigration() {
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      // Nullable ADD COLUMN: both SQLite and PostgreSQL add it without rewriting existing rows.
      await db.schema.alterTable('ledger').addColumn('queue_ms', 'integer').execute()
      await db.schema.alterTable('keys').addColumn('queue', 'text').execute()
    },
  }
}
