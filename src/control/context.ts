import type { Kysely, Transaction } from 'kysely'
import { type AuditInput, insertAudit } from './audit.js'
import { type ChangeEvent, type ChangeKind, recordChange } from './changes.js'
import type { Database, Dialect } from './db.js'
import { ConflictError } from './errors.js'
import type { Tables } from './schema.js'
import type { LimitOverrides } from './validate.js'

/** Checks the data layer cannot make alone: they belong to the gateway's config. */
export interface ControlValidation {
  /** Throw (naming `field`) when `tier` is not a configured tier. */
  tier?: (tier: string, field: string) => void
  /** Throw (naming the field) when a limit override does not fit the config's limit schema. */
  limits?: (limits: LimitOverrides, field: string) => void
}

/** What every part of the control plane shares. */
export interface ControlContext {
  readonly database: Database
  readonly db: Kysely<Tables>
  readonly dialect: Dialect
  /** Epoch ms; tests pass a controllable clock. */
  now(): number
  readonly validation: ControlValidation
  /** After a commit: tells this process's subscribers at once (the feed tells the other instances). */
  announce(event: ChangeEvent): void
}

/** What a mutation leaves behind besides its own rows: audit entries and change notices. */
export interface Journal {
  audit(entry: AuditInput): void
  change(kind: ChangeKind, id: string): void
}

/**
 * Runs `work` in one transaction with its audit rows and change notices: all commit or none. After
 * the commit, the changes are announced in-process. SQLite answers SQLITE_BUSY when another
 * process wrote between this transaction's read and its write; the whole unit is then retried.
 */
export async function mutate<T>(
  ctx: ControlContext,
  work: (trx: Transaction<Tables>, journal: Journal, now: number) => Promise<T>,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const changes: { kind: ChangeKind; id: string }[] = []
    try {
      const result = await ctx.db.transaction().execute(async (trx) => {
        const now = ctx.now()
        const audits: AuditInput[] = []
        const value = await work(
          trx,
          { audit: (e) => audits.push(e), change: (kind, id) => changes.push({ kind, id }) },
          now,
        )
        for (const entry of audits) await insertAudit(trx, entry, now)
        for (const c of changes) await recordChange(trx, ctx.dialect, c.kind, c.id, now)
        return value
      })
      for (const c of changes) ctx.announce(c)
      return result
    } catch (error) {
      if (attempt < 5 && isBusy(error)) {
        await new Promise((r) => setTimeout(r, 20 * attempt))
        continue
      }
      if (isUniqueViolation(error)) throw new ConflictError('a record with this id already exists')
      if (isForeignKeyViolation(error))
        throw new ConflictError('a record this change refers to was removed meanwhile')
      throw error
    }
  }
}

function errorCode(error: unknown): unknown {
  return (error as { code?: unknown } | null)?.code
}

function isBusy(error: unknown): boolean {
  const code = errorCode(error)
  return code === 'SQLITE_BUSY' || code === 'SQLITE_BUSY_SNAPSHOT' || code === 'SQLITE_LOCKED'
}

/** A primary key or unique constraint refused the row (two admins created the same id at once). */
export function isUniqueViolation(error: unknown): boolean {
  const code = errorCode(error)
  return code === '23505' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE'
}

function isForeignKeyViolation(error: unknown): boolean {
  const code = errorCode(error)
  return code === '23503' || code === 'SQLITE_CONSTRAINT_FOREIGNKEY'
}
