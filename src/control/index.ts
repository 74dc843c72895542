/**
 * The control plane: keys, teams, end users, budgets, the request ledger, usage queries, the audit
 * log and the change feed, in SQLite (embedded, the default) or PostgreSQL (shared). See
 * docs/admin.md. The admin API, the CLI and the gateway are built on `openControl()`.
 */

export {
  CALENDAR_PERIODS,
  type CalendarPeriod,
  type PeriodBounds,
  parseUtcOffset,
  periodBounds,
} from '../core/period.js'
export { type AuditAction, type AuditEntry, AuditLog, type AuditPage, type AuditQuery } from './audit.js'
export { type BudgetLimit, type Budgets, validateBudgets } from './budgets.js'
export {
  CHANGE_CHANNEL,
  type ChangeEvent,
  type ChangeFeed,
  type ChangeKind,
  type ChangeListener,
} from './changes.js'
export { LISTENER_APPLICATION_NAME } from './changes-pg.js'
export type { ControlValidation } from './context.js'
export { type Control, type ControlOptions, openControl } from './control.js'
export {
  type Database,
  type DatabaseOptions,
  DEFAULT_SQLITE_PATH,
  type Dialect,
  openDatabase,
  redactUrl,
} from './db.js'
export { ConflictError, ControlInputError, NotFoundError } from './errors.js'
export {
  KeyCache,
  type KeyCacheOptions,
  type KeyCacheStats,
  KeyLookupUnavailableError,
  type KeySource,
} from './key-cache.js'
export { formatKey, isPublicId, type ParsedKey, parseKey, secretMatches } from './key-format.js'
export type { KeyQueue } from './key-queue.js'
export {
  type IssuedKey,
  type KeyCredentials,
  type KeyInfo,
  type KeyStatus,
  secretOpens,
} from './key-records.js'
export {
  type ActorOptions,
  type KeyInput,
  type KeyListQuery,
  type KeyPage,
  type KeyPatch,
  KeyStore,
  MAX_ROTATION_GRACE_MS,
} from './keys.js'
export { LastUsedRecorder } from './last-used.js'
export { LedgerWriter, type LedgerWriterOptions, type LedgerWriterStats } from './ledger.js'
export { type LedgerEntry, type LedgerOutcome, type LedgerRow, REFUSED_OUTCOMES } from './ledger-rows.js'
export {
  appliedMigrations,
  LATEST_MIGRATION,
  MIGRATION_NAMES,
  type MigrationReport,
  migrateTo,
  migrateToLatest,
} from './migrations/index.js'
export {
  type Team,
  type TeamInput,
  type TeamListQuery,
  type TeamPage,
  type TeamPatch,
  TeamStore,
} from './teams.js'
export {
  type LedgerFilter,
  type LedgerPage,
  type LedgerQuery,
  MAX_SERIES_POINTS,
  SERIES_STEPS,
  type SeriesPoint,
  type SeriesQuery,
  type SeriesStep,
  type Spend,
  type SpendScope,
  type UsageGroup,
  UsageQueries,
  type UsageQuery,
  type UsageSeries,
  type UsageTotals,
} from './usage.js'
export { type EndUser, type EndUserInput, type UserListQuery, UserStore } from './users.js'
export type { Json, JsonObject, LimitOverrides, LimitSpec } from './validate.js'
