import type { Kysely } from 'kysely'
import { ControlInputError } from './errors.js'
import type { Tables } from './schema.js'

export interface PruneOptions {
  /** Rows older than this (epoch ms) go. */
  before: number
  /** Rows per DELETE (default 5,000): each statement holds its locks briefly. */
  chunkRows?: number
  /** Statements per call at most (default 20): one call does bounded work; call again while `more`. */
  maxChunks?: number
}

/**
 * Deletes ledger rows older than `before` in chunks, oldest first, through the time index. The
 * gateway calls it periodically (e.g. hourly with `before = now - retentionDays`); a backlog is
 * worked off over several calls rather than in one long transaction.
 */
export async function pruneLedger(
  db: Kysely<Tables>,
  options: PruneOptions,
): Promise<{ deleted: number; more: boolean }> {
  const { before } = options
  if (!Number.isSafeInteger(before))
    throw new ControlInputError('before', 'must be epoch milliseconds', before)
  const chunk = options.chunkRows ?? 5000
  const maxChunks = options.maxChunks ?? 20
  let deleted = 0
  for (let i = 0; i < maxChunks; i++) {
    const result = await db
      .deleteFrom('ledger')
      .where(
        'id',
        'in',
        db.selectFrom('ledger').select('id').where('time', '<', before).orderBy('time').limit(chunk),
      )
      .executeTakeFirst()
    const n = Number(result.numDeletedRows)
    deleted += n
    if (n < chunk) return { deleted, more: false }
  }
  return { deleted, more: true }
}
