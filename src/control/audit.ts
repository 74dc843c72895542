import type { Kysely, Transaction } from 'kysely'
import { decodeCursor, encodeCursor } from './cursor.js'
import type { Tables } from './schema.js'
import { isoTime, type Json, pageLimit, parseJson, requireText, timeInput } from './validate.js'

/** What an admin did. Secrets and their hashes are never part of `before` / `after`. */
export type AuditAction =
  | 'key.create'
  | 'key.update'
  | 'key.revoke'
  | 'key.rotate'
  | 'team.create'
  | 'team.update'
  | 'team.delete'
  | 'user.set'
  | 'user.delete'
  | 'subject.unblock'
  /** An abuse detector raised its level (actor "sluice"), or an operator cleared or allow-listed a subject. */
  | 'detection.raise'
  | 'detection.clear'
  | 'detection.allow'

export interface AuditEntry {
  id: number
  time: string
  /** Who: the admin token's name, `cli:<os user>`… whatever the caller passed as `actor`. */
  actor: string
  action: AuditAction
  /** `subject`: live limiter state (`key:<id>`, `user:<id>`, `ip:<address>`), e.g. an unblock. */
  targetKind: 'key' | 'team' | 'user' | 'subject'
  targetId: string
  /** The public record before the change (null for a creation). */
  before: Json | null
  /** The public record after the change (null for a deletion). */
  after: Json | null
}

export interface AuditInput {
  actor: string
  action: AuditAction
  targetKind: AuditEntry['targetKind']
  targetId: string
  before: unknown
  after: unknown
}

export interface AuditQuery {
  actor?: string
  action?: AuditAction
  targetKind?: AuditEntry['targetKind']
  targetId?: string
  /** Times as ISO strings, epoch ms or Dates; `from` inclusive, `to` exclusive. */
  from?: string | number | Date
  to?: string | number | Date
  /** Newest first; at most 1000 a page (default 100). */
  limit?: number
  /** The `next` of the previous page. */
  cursor?: string
}

export interface AuditPage {
  items: AuditEntry[]
  /** Pass as `cursor` for the next (older) page; absent on the last page. */
  next?: string
}

/** Writes one audit row inside the transaction that makes the change: both commit or neither. */
export async function insertAudit(
  trx: Transaction<Tables> | Kysely<Tables>,
  entry: AuditInput,
  now: number,
): Promise<void> {
  await trx
    .insertInto('audit')
    .values({
      time: now,
      actor: entry.actor,
      action: entry.action,
      target_kind: entry.targetKind,
      target_id: entry.targetId,
      before: entry.before === null || entry.before === undefined ? null : JSON.stringify(entry.before),
      after: entry.after === null || entry.after === undefined ? null : JSON.stringify(entry.after),
    })
    .execute()
}

export class AuditLog {
  constructor(private readonly db: Kysely<Tables>) {}

  /** Entries newest first, filtered, a page at a time (keyset on the entry id). */
  async list(query: AuditQuery = {}): Promise<AuditPage> {
    const limit = pageLimit(query.limit, 'limit', 100, 1000)
    let q = this.db.selectFrom('audit').selectAll()
    if (query.actor !== undefined) q = q.where('actor', '=', requireText(query.actor, 'actor'))
    if (query.action !== undefined) q = q.where('action', '=', requireText(query.action, 'action'))
    if (query.targetKind !== undefined)
      q = q.where('target_kind', '=', requireText(query.targetKind, 'targetKind'))
    if (query.targetId !== undefined)
      q = q.where('target_id', '=', requireText(query.targetId, 'targetId', 256))
    const from = timeInput(query.from, 'from')
    const to = timeInput(query.to, 'to')
    if (from !== undefined && from !== null) q = q.where('time', '>=', from)
    if (to !== undefined && to !== null) q = q.where('time', '<', to)
    if (query.cursor !== undefined) {
      const [id] = decodeCursor(query.cursor, 'cursor', 1)
      q = q.where('id', '<', id!)
    }
    const rows = await q
      .orderBy('id', 'desc')
      .limit(limit + 1)
      .execute()
    const page = rows.slice(0, limit)
    const items = page.map((r) => ({
      id: Number(r.id),
      time: isoTime(Number(r.time)),
      actor: r.actor,
      action: r.action as AuditAction,
      targetKind: r.target_kind as AuditEntry['targetKind'],
      targetId: r.target_id,
      before: parseJson<Json>(r.before),
      after: parseJson<Json>(r.after),
    }))
    const last = items[items.length - 1]
    return rows.length > limit && last ? { items, next: encodeCursor([last.id]) } : { items }
  }
}
