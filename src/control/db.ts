import { mkdirSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import Sqlite from 'better-sqlite3'
import {
  CompiledQuery,
  type DatabaseConnection,
  type DialectAdapter,
  type Driver,
  Kysely,
  PostgresDialect,
  SqliteAdapter,
  SqliteDialect,
  type SqliteDialectConfig,
  SqliteDriver,
} from 'kysely'
import pg from 'pg'
import { ControlInputError } from './errors.js'
import type { Tables } from './schema.js'
import { retryWhileBusy } from './sqlite-busy.js'

/** Where the embedded database lives when no URL is given. */
export const DEFAULT_SQLITE_PATH = '.sluice/sluice.db'

export type Dialect = 'sqlite' | 'postgres'

export interface DatabaseOptions {
  /**
   * `postgres://…` / `postgresql://…` for PostgreSQL; `sqlite:<path>` or a plain file path for SQLite
   * (`:memory:` for a private in-memory database). Default: `.sluice/sluice.db`.
   */
  url?: string
  /** PostgreSQL: connections in the pool (default 10). */
  poolSize?: number
  /** PostgreSQL: longest wait for a connection (default 5 s). */
  connectTimeoutMs?: number
  /** PostgreSQL: longest wait for any query's answer (default 30 s). SQLite: longest wait for a lock. */
  queryTimeoutMs?: number
  /** Failures in the background (an idle PostgreSQL connection dropped). */
  onError?: (error: unknown) => void
}

/** An open database: the Kysely instance and what the dialect-specific parts need. */
export interface Database {
  readonly dialect: Dialect
  readonly db: Kysely<Tables>
  /** Where it is, safe to log (a PostgreSQL password is masked). */
  readonly label: string
  /** SQLite: the better-sqlite3 handle (the ledger's prepared insert); use only through db.connection(). */
  readonly sqlite?: Sqlite.Database
  /** PostgreSQL: how to open one more, dedicated connection (the change feed's listener). */
  readonly clientConfig?: pg.ClientConfig
  close(): Promise<void>
}

/**
 * PostgreSQL returns BIGINT and NUMERIC as strings (they may exceed 2^53). Every BIGINT here is a
 * time in ms, a count or a sum of counts, far below 2^53: numbers are what callers want. Set per
 * connection (not on pg's global registry) so other users of `pg` in the process are untouched.
 */
const numericTypes: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => {
    if (oid === pg.types.builtins.INT8 || oid === pg.types.builtins.NUMERIC) return Number
    return pg.types.getTypeParser(oid, format ?? 'text')
  }) as pg.CustomTypesConfig['getTypeParser'],
}

export function isPostgresUrl(url: string): boolean {
  return /^postgres(ql)?:\/\//i.test(url)
}

/** The URL with its password masked, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url)
    if (parsed.password !== '') parsed.password = '***'
    return parsed.toString()
  } catch {
    return '<unparseable database URL>'
  }
}

export function openDatabase(options: DatabaseOptions = {}): Database {
  const url = options.url ?? DEFAULT_SQLITE_PATH
  if (typeof url !== 'string' || url.trim() === '') {
    throw new ControlInputError('database', 'must be a postgres:// URL or a SQLite file path')
  }
  if (isPostgresUrl(url)) return openPostgres(url, options)
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) {
    // Never echo the URL: it may hold a password. Name the scheme only.
    throw new ControlInputError(
      'database',
      `must be a postgres:// URL or a SQLite file path (scheme "${url.split(':')[0]}" is not supported)`,
    )
  }
  return openSqlite(url.startsWith('sqlite:') ? url.slice('sqlite:'.length) : url, options)
}

/**
 * SQLite transactions start with BEGIN IMMEDIATE: each takes the write lock at once (waiting for
 * it up to the busy timeout). With a plain BEGIN a transaction that reads and then writes fails
 * when another process committed in between.
 */
class ImmediateSqliteDriver extends SqliteDriver {
  constructor(
    config: SqliteDialectConfig,
    private readonly fileLock: AsyncLock | undefined,
  ) {
    super(config)
  }

  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'))
  }

  override async acquireConnection(): Promise<DatabaseConnection> {
    await this.fileLock?.lock()
    return super.acquireConnection()
  }

  override async releaseConnection(): Promise<void> {
    await super.releaseConnection()
    this.fileLock?.unlock()
  }
}

/**
 * better-sqlite3 waits for a lock synchronously. Two connections to one file in one process (two
 * instances in a test, a CLI command run in-process) would deadlock for the whole busy timeout:
 * one holds the write lock and waits for the event loop, which the other blocks while it waits
 * for the lock. Connections to the same file in one process therefore take turns here first.
 */
class AsyncLock {
  private tail: Promise<void> = Promise.resolve()
  private releases: (() => void)[] = []

  async lock(): Promise<void> {
    const previous = this.tail
    let release!: () => void
    this.tail = new Promise((resolve) => {
      release = resolve
    })
    await previous
    this.releases.push(release)
  }

  unlock(): void {
    this.releases.shift()?.()
  }
}
const fileLocks = new Map<string, AsyncLock>()

function lockFor(path: string): AsyncLock {
  let lock = fileLocks.get(path)
  if (lock === undefined) {
    lock = new AsyncLock()
    fileLocks.set(path, lock)
  }
  return lock
}

/**
 * SQLite does run DDL in transactions; Kysely's adapter says it does not, and then runs migrations
 * outside one, without a lock: two processes opening a new database both created its tables.
 * Inside a BEGIN IMMEDIATE transaction the second waits, then finds the migrations done.
 */
class TransactionalDdlSqliteAdapter extends SqliteAdapter {
  override get supportsTransactionalDdl(): boolean {
    return true
  }
}

class ImmediateSqliteDialect extends SqliteDialect {
  constructor(
    private readonly sqliteConfig: SqliteDialectConfig,
    private readonly fileLock: AsyncLock | undefined,
  ) {
    super(sqliteConfig)
  }

  override createDriver(): Driver {
    return new ImmediateSqliteDriver(this.sqliteConfig, this.fileLock)
  }

  override createAdapter(): DialectAdapter {
    return new TransactionalDdlSqliteAdapter()
  }
}

function openSqlite(path: string, options: DatabaseOptions): Database {
  if (path === '') throw new ControlInputError('database', 'needs a file path after "sqlite:"')
  const memory = path === ':memory:'
  if (!memory) mkdirSync(dirname(resolve(path)), { recursive: true })
  const timeoutMs = options.queryTimeoutMs ?? 5000
  const sqlite = new Sqlite(path, { timeout: timeoutMs })
  try {
    // WAL: readers never block the writer (the ledger flush) and a commit is one sequential write.
    // Switching to it may be refused at once while another process opens the file too.
    if (!memory) retryWhileBusy(() => sqlite.pragma('journal_mode = WAL'), timeoutMs)
    sqlite.pragma('synchronous = NORMAL')
    sqlite.pragma('foreign_keys = ON')
  } catch (error) {
    sqlite.close()
    throw error
  }
  const db = new Kysely<Tables>({
    dialect: new ImmediateSqliteDialect({ database: sqlite }, memory ? undefined : lockFor(resolve(path))),
  })
  return {
    dialect: 'sqlite',
    db,
    sqlite,
    label: memory ? 'sqlite::memory:' : `sqlite:${resolve(path)}`,
    close: () => db.destroy(),
  }
}

function openPostgres(url: string, options: DatabaseOptions): Database {
  const clientConfig: pg.ClientConfig = {
    connectionString: url,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 5000,
    query_timeout: options.queryTimeoutMs ?? 30_000,
    application_name: 'sluice',
    types: numericTypes,
  }
  const pool = new pg.Pool({ ...clientConfig, max: options.poolSize ?? 10, idleTimeoutMillis: 30_000 })
  // An idle connection that drops emits 'error' on the pool; unhandled, it would end the process.
  pool.on('error', (error) => options.onError?.(error))
  const db = new Kysely<Tables>({ dialect: new PostgresDialect({ pool }) })
  return { dialect: 'postgres', db, label: redactUrl(url), clientConfig, close: () => db.destroy() }
}
