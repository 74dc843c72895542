import { AuditLog } from './audit.js'
import { type ChangeEvent, type ChangeFeed, type ChangeListener, Listeners, pruneChanges } from './changes.js'
import { NotifyChangeFeed } from './changes-pg.js'
import { PollingChangeFeed } from './changes-sqlite.js'
import type { ControlContext, ControlValidation } from './context.js'
import { type Database, type DatabaseOptions, type Dialect, openDatabase } from './db.js'
import { KeyCache, type KeyCacheOptions } from './key-cache.js'
import { KeyStore } from './keys.js'
import { LastUsedRecorder } from './last-used.js'
import { LedgerWriter, type LedgerWriterOptions } from './ledger.js'
import { defaultBatchRows, ledgerInsertFor } from './ledger-insert.js'
import {
  appliedMigrations,
  LATEST_MIGRATION,
  type MigrationReport,
  migrateToLatest,
} from './migrations/index.js'
import { pruneLedger } from './retention.js'
import { TeamStore } from './teams.js'
import { UsageQueries } from './usage.js'
import { UserStore } from './users.js'

export interface ControlOptions extends Omit<DatabaseOptions, 'onError'> {
  /** Epoch ms (default Date.now); tests pass their own. */
  clock?: () => number
  /** Bring the schema to the latest version on open (default true). */
  migrate?: boolean
  /** Checks that need the gateway's config: tier names, limit overrides. */
  validation?: ControlValidation
  changes?: {
    /** SQLite: how often the change table is polled (default 250 ms). */
    pollIntervalMs?: number
    /** PostgreSQL: deadline of connect, LISTEN and health checks (default 5 s). */
    deadlineMs?: number
    /** PostgreSQL: how often the listening connection is checked (default 5 s). */
    healthIntervalMs?: number
    /** Once per transition of the feed (for a log line and a gauge). */
    onStateChange?: (state: 'up' | 'down', error?: unknown) => void
  }
  ledger?: LedgerWriterOptions
  /** How often last-used times are written (default 5 s). */
  lastUsedIntervalMs?: number
  /** Background failures, with where they happened (`changes`, `last-used`, `key-cache`, `pool`). */
  onError?: (error: unknown, where: string) => void
}

/** The control plane over one database: what the admin API, the CLI and the gateway share. */
export interface Control {
  readonly dialect: Dialect
  /** Where the database is, safe to log. */
  readonly label: string
  readonly database: Database
  readonly keys: KeyStore
  readonly teams: TeamStore
  readonly users: UserStore
  readonly audit: AuditLog
  readonly usage: UsageQueries
  /** The batched request ledger (append is synchronous). */
  readonly ledger: LedgerWriter
  /**
   * Admin changes from this process (at once, after commit) and from every other instance (within
   * about a second). A change may be delivered twice; listeners must be idempotent.
   */
  readonly changes: ChangeFeed
  readonly lastUsed: LastUsedRecorder
  /**
   * A hot-path key cache wired to this database, its change feed and the last-used recorder. It
   * starts loading the ids of existing keys; `await cache.warm()` before serving, so that a
   * restart under a spray of random ids does not hold real keys to the miss budget.
   */
  createKeyCache(options?: KeyCacheOptions): KeyCache
  /** Deletes ledger rows older than `before`, in bounded chunks; call again while `more`. */
  pruneLedger(options: {
    before: number
    chunkRows?: number
    maxChunks?: number
  }): Promise<{ deleted: number; more: boolean }>
  /** Deletes change-feed rows older than `before` (default: an hour ago). */
  pruneChanges(before?: number): Promise<number>
  /** Brings the schema to the latest version (what `sluice migrate` runs). */
  migrate(): Promise<MigrationReport>
  /** Writes the ledger and last-used times, stops the feed, closes the connections. */
  close(): Promise<void>
}

/** Opens the database (SQLite by default, PostgreSQL for a postgres:// URL) and migrates it. */
export async function openControl(options: ControlOptions = {}): Promise<Control> {
  const onError = options.onError ?? (() => {})
  const database = openDatabase({ ...options, onError: (e) => onError(e, 'pool') })
  try {
    if (options.migrate !== false) await migrateToLatest(database)
    else await requireLatestSchema(database)
  } catch (error) {
    await database.close().catch(() => {})
    throw error
  }
  const clock = options.clock ?? Date.now
  const local = new Listeners((e) => onError(e, 'changes'))
  const remote: ChangeFeed =
    database.dialect === 'postgres'
      ? new NotifyChangeFeed(database.clientConfig!, {
          deadlineMs: options.changes?.deadlineMs,
          healthIntervalMs: options.changes?.healthIntervalMs,
          onStateChange: options.changes?.onStateChange,
          onError: (e) => onError(e, 'changes'),
        })
      : new PollingChangeFeed(database.db, {
          intervalMs: options.changes?.pollIntervalMs,
          onStateChange: options.changes?.onStateChange,
          onError: (e) => onError(e, 'changes'),
        })
  const changes: ChangeFeed = {
    subscribe(listener: ChangeListener) {
      const offLocal = local.add(listener)
      const offRemote = remote.subscribe(listener)
      return () => {
        offLocal()
        offRemote()
      }
    },
    ready: () => remote.ready(),
    get state() {
      return remote.state
    },
    close: () => remote.close(),
  }
  const ctx: ControlContext = {
    database,
    db: database.db,
    dialect: database.dialect,
    now: clock,
    validation: options.validation ?? {},
    announce: (event: ChangeEvent) => local.emit(event),
  }
  const keys = new KeyStore(ctx)
  const ledger = new LedgerWriter(ledgerInsertFor(database), {
    clock,
    defaultBatchRows: defaultBatchRows(database),
    ...options.ledger,
  })
  const lastUsed = new LastUsedRecorder(database.db, {
    intervalMs: options.lastUsedIntervalMs,
    onError: (e) => onError(e, 'last-used'),
  })
  const caches = new Set<KeyCache>()
  let closed = false

  return {
    dialect: database.dialect,
    label: database.label,
    database,
    keys,
    teams: new TeamStore(ctx),
    users: new UserStore(ctx),
    audit: new AuditLog(database.db),
    usage: new UsageQueries(database.db),
    ledger,
    changes,
    lastUsed,
    createKeyCache(cacheOptions: KeyCacheOptions = {}) {
      const cache = new KeyCache(keys, changes, {
        clock,
        onUsed: (id, now) => lastUsed.touch(id, now),
        onError: (e) => onError(e, 'key-cache'),
        ...cacheOptions,
      })
      caches.add(cache)
      // Loads the known ids at once; the gateway should still `await cache.warm()` before serving.
      cache.warm().catch(() => {})
      return cache
    },
    pruneLedger: (o) => pruneLedger(database.db, o),
    pruneChanges: (before) => pruneChanges(database.db, before ?? clock() - 3_600_000),
    migrate: () => migrateToLatest(database),
    async close() {
      if (closed) return
      closed = true
      for (const cache of caches) cache.close()
      await ledger.close()
      await lastUsed.close().catch((e) => onError(e, 'last-used'))
      await remote.close()
      await database.close()
    },
  }
}

/** With `migrate: false` (migrations run apart, by `sluice migrate`): refuse a schema behind this code. */
async function requireLatestSchema(database: Database): Promise<void> {
  const applied = await appliedMigrations(database).catch(() => [] as string[])
  const version = applied[applied.length - 1]
  if (version === undefined || version < LATEST_MIGRATION) {
    throw new Error(
      `the database ${database.label} is at schema ${version ?? 'none'}, this sluice needs ${LATEST_MIGRATION}: ` +
        'run `sluice migrate` (or open it with migrations on)',
    )
  }
}
