import { type Migration, type MigrationProvider, type MigrationResultSet, Migrator } from 'kysely'
import type { Database, Dialect } from '../db.js'
import { registryMigration } from './0001-registry.js'
import { ledgerMigration } from './0002-ledger.js'
import { ledgerCache1hMigration } from './0003-ledger-cache-1h.js'
import { queueMigration } from './0004-queue.js'

/**
 * Every schema version, oldest first, in code: nothing is read from disk at run time, so the
 * build cannot miss a file. Names sort in order; never rename or edit one that has shipped — add
 * the next one.
 */
function migrations(dialect: Dialect): Record<string, Migration> {
  return {
    '0001_registry': registryMigration(dialect),
    '0002_ledger': ledgerMigration(dialect),
    '0003_ledger_cache_1h': ledgerCache1hMigration(),
    '0004_queue': queueMigration(),
  }
}

export const MIGRATION_NAMES: readonly string[] = Object.keys(migrations('sqlite'))
export const LATEST_MIGRATION = MIGRATION_NAMES[MIGRATION_NAMES.length - 1]!

export interface MigrationReport {
  /** Migrations applied by this call, in order (empty when the schema was current). */
  applied: string[]
  /** The schema version the database is at now. */
  version: string
}

function migratorFor(database: Database): Migrator {
  const provider: MigrationProvider = { getMigrations: async () => migrations(database.dialect) }
  return new Migrator({
    db: database.db,
    provider,
    migrationTableName: 'sluice_migration',
    migrationLockTableName: 'sluice_migration_lock',
  })
}

/**
 * Brings the schema to the latest version (what `sluice migrate` and every open run). Safe to run
 * again and from several processes at once: PostgreSQL serialises runners with an advisory lock;
 * SQLite lets one writer at a time, and a runner that lost the race retries and finds the work done.
 */
export async function migrateToLatest(database: Database): Promise<MigrationReport> {
  return run(database, (m) => m.migrateToLatest())
}

/** Brings the schema to exactly `name` (tests use it to build an older schema). */
export async function migrateTo(database: Database, name: string): Promise<MigrationReport> {
  if (!MIGRATION_NAMES.includes(name)) throw new Error(`unknown migration ${JSON.stringify(name)}`)
  return run(database, (m) => m.migrateTo(name))
}

/** The names of the migrations applied to this database, oldest first. */
export async function appliedMigrations(database: Database): Promise<string[]> {
  const all = await migratorFor(database).getMigrations()
  return all.filter((m) => m.executedAt !== undefined).map((m) => m.name)
}

async function run(
  database: Database,
  step: (migrator: Migrator) => Promise<MigrationResultSet>,
): Promise<MigrationReport> {
  const migrator = migratorFor(database)
  for (let attempt = 1; ; attempt++) {
    const { error, results = [] } = await step(migrator)
    if (error === undefined) {
      const applied = results.filter((r) => r.status === 'Success').map((r) => r.migrationName)
      const done = await appliedMigrations(database)
      return { applied, version: done[done.length - 1] ?? 'none' }
    }
    if (attempt < 5 && isBusy(error)) {
      await new Promise((r) => setTimeout(r, 50 * attempt))
      continue
    }
    const message = error instanceof Error ? error.message : String(error)
    if (message.includes('corrupted migrations')) {
      throw new Error(
        `the database ${database.label} has a schema this version of sluice does not know ` +
          `(was it migrated by a newer sluice?): ${message}`,
      )
    }
    throw new Error(`migrating ${database.label} failed: ${message}`, { cause: error })
  }
}

function isBusy(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code
  return code === 'SQLITE_BUSY' || code === 'SQLITE_BUSY_SNAPSHOT' || code === 'SQLITE_LOCKED'
}
