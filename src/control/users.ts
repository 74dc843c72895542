import { type Selectable, sql, type Transaction } from 'kysely'
import type { Budgets } from './budgets.js'
import { budgetsText } from './budgets.js'
import { type ControlContext, mutate } from './context.js'
import { ControlInputError, NotFoundError } from './errors.js'
import type { ActorOptions } from './keys.js'
import type { Tables, UsersTable } from './schema.js'
import {
  isoTime,
  type JsonObject,
  jsonObjectText,
  type LimitOverrides,
  likePattern,
  limitsText,
  pageLimit,
  pageOffset,
  parseJson,
  requireActor,
  requireText,
  requireUserId,
} from './validate.js'

/**
 * Overrides for one end user (the user a request names, e.g. by X-User-ID from a trusted proxy).
 * End users need no row to be served: they get their tier's limits. A row exists only for those
 * an admin gave their own limits or budgets.
 */
export interface EndUser {
  id: string
  limits: LimitOverrides | null
  budgets: Budgets | null
  metadata: JsonObject | null
  createdAt: string
  updatedAt: string
}

export interface EndUserInput {
  limits?: unknown
  budgets?: unknown
  metadata?: unknown
}

export interface UserListQuery {
  /** Part of the id, case-insensitive. */
  search?: string
  limit?: number
  offset?: number
}

function userOf(row: Selectable<UsersTable>): EndUser {
  return {
    id: row.id,
    limits: parseJson<LimitOverrides>(row.limits),
    budgets: parseJson<Budgets>(row.budgets),
    metadata: parseJson<JsonObject>(row.metadata),
    createdAt: isoTime(Number(row.created_at)),
    updatedAt: isoTime(Number(row.updated_at)),
  }
}

export class UserStore {
  constructor(private readonly ctx: ControlContext) {}

  /** A user's row inside a change, FOR UPDATE on PostgreSQL (see KeyStore.row). */
  private row(trx: Transaction<Tables>, id: string): Promise<Selectable<UsersTable> | undefined> {
    const q = trx.selectFrom('users').selectAll().where('id', '=', id)
    return (this.ctx.dialect === 'postgres' ? q.forUpdate() : q).executeTakeFirst()
  }

  /** Creates or changes a user's overrides; absent fields stay, null clears. */
  async set(id: string, input: EndUserInput, options: ActorOptions): Promise<EndUser> {
    const actor = requireActor(options)
    requireUserId(id, 'id')
    if (typeof input !== 'object' || input === null)
      throw new ControlInputError('user', 'must be an object', input)
    for (const field of Object.keys(input)) {
      if (!['limits', 'budgets', 'metadata'].includes(field)) {
        throw new ControlInputError(field.slice(0, 64), 'is not a user field (limits, budgets, metadata)')
      }
    }
    const set: Partial<Selectable<UsersTable>> = {}
    const limits = limitsText(input.limits, 'limits', this.ctx.validation.limits)
    if (limits !== undefined) set.limits = limits
    const budgets = budgetsText(input.budgets, 'budgets')
    if (budgets !== undefined) set.budgets = budgets
    const metadata = jsonObjectText(input.metadata, 'metadata', 8192)
    if (metadata !== undefined) set.metadata = metadata
    return mutate(this.ctx, async (trx, journal, now) => {
      const before = await this.row(trx, id)
      let after: Selectable<UsersTable>
      if (before === undefined) {
        after = { id, limits: null, budgets: null, metadata: null, ...set, created_at: now, updated_at: now }
        await trx.insertInto('users').values(after).execute()
      } else {
        after = { ...before, ...set, updated_at: now }
        await trx
          .updateTable('users')
          .set({ ...set, updated_at: now })
          .where('id', '=', id)
          .execute()
      }
      const user = userOf(after)
      journal.audit({
        actor,
        action: 'user.set',
        targetKind: 'user',
        targetId: id,
        before: before === undefined ? null : userOf(before),
        after: user,
      })
      journal.change('user', id)
      return user
    })
  }

  async get(id: string): Promise<EndUser> {
    if (typeof id !== 'string' || id === '' || id.length > 256)
      throw new NotFoundError('user', String(id).slice(0, 64))
    const row = await this.ctx.db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst()
    if (row === undefined) throw new NotFoundError('user', id)
    return userOf(row)
  }

  async list(query: UserListQuery = {}): Promise<{ items: EndUser[]; total: number }> {
    const limit = pageLimit(query.limit, 'limit', 100, 1000)
    const offset = pageOffset(query.offset, 'offset')
    let q = this.ctx.db.selectFrom('users')
    if (query.search !== undefined) {
      const pattern = likePattern(requireText(query.search, 'search').toLowerCase())
      q = q.where(sql<boolean>`lower(id) like ${pattern} escape '\\'`)
    }
    const [count, rows] = await Promise.all([
      q.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirst(),
      q.selectAll().orderBy('id').limit(limit).offset(offset).execute(),
    ])
    return { items: rows.map(userOf), total: Number(count?.n ?? 0) }
  }

  /** Removes a user's overrides (the user falls back to the tier's limits). */
  async delete(id: string, options: ActorOptions): Promise<void> {
    const actor = requireActor(options)
    await mutate(this.ctx, async (trx, journal) => {
      const before = await this.row(trx, id)
      if (before === undefined) throw new NotFoundError('user', String(id).slice(0, 64))
      await trx.deleteFrom('users').where('id', '=', id).execute()
      journal.audit({
        actor,
        action: 'user.delete',
        targetKind: 'user',
        targetId: id,
        before: userOf(before),
        after: null,
      })
      journal.change('user', id)
    })
  }
}
