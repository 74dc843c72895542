import type { Kysely } from 'kysely'
import type { Dialect } from '../db.js'

/** Keys, teams, end users, the audit log and the change counter. */
export function registryMigration(dialect: Dialect) {
  // SQLite: AUTOINCREMENT so that a sequence number is never reused, even after deletes.
  const serial = (db: Kysely<unknown>, table: string, column: string) =>
    dialect === 'postgres'
      ? db.schema.createTable(table).addColumn(column, 'bigserial', (c) => c.primaryKey())
      : db.schema.createTable(table).addColumn(column, 'integer', (c) => c.primaryKey().autoIncrement())

  return {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('teams')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('limits', 'text')
        .addColumn('budgets', 'text')
        .addColumn('metadata', 'text')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute()

      await db.schema
        .createTable('keys')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('tier', 'text', (c) => c.notNull())
        .addColumn('team_id', 'text', (c) => c.references('teams.id'))
        .addColumn('user_id', 'text')
        .addColumn('secret_hash', 'text', (c) => c.notNull())
        .addColumn('previous_secret_hash', 'text')
        .addColumn('previous_expires_at', 'bigint')
        .addColumn('limits', 'text')
        .addColumn('budgets', 'text')
        .addColumn('metadata', 'text')
        .addColumn('expires_at', 'bigint')
        .addColumn('revoked_at', 'bigint')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addColumn('last_used_at', 'bigint')
        .execute()
      await db.schema.createIndex('keys_team').on('keys').columns(['team_id']).execute()
      await db.schema.createIndex('keys_created').on('keys').columns(['created_at', 'id']).execute()

      await db.schema
        .createTable('users')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('limits', 'text')
        .addColumn('budgets', 'text')
        .addColumn('metadata', 'text')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute()

      await serial(db, 'audit', 'id')
        .addColumn('time', 'bigint', (c) => c.notNull())
        .addColumn('actor', 'text', (c) => c.notNull())
        .addColumn('action', 'text', (c) => c.notNull())
        .addColumn('target_kind', 'text', (c) => c.notNull())
        .addColumn('target_id', 'text', (c) => c.notNull())
        .addColumn('before', 'text')
        .addColumn('after', 'text')
        .execute()
      await db.schema.createIndex('audit_target').on('audit').columns(['target_kind', 'target_id']).execute()
      await db.schema.createIndex('audit_time').on('audit').columns(['time']).execute()

      await serial(db, 'changes', 'seq')
        .addColumn('time', 'bigint', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('entity_id', 'text', (c) => c.notNull())
        .execute()
    },
  }
}
