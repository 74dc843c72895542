import { type Kysely, type Selectable, sql, type Transaction } from 'kysely'
import type { Budgets } from './budgets.js'
import { budgetsText } from './budgets.js'
import { type ControlContext, mutate } from './context.js'
import { ConflictError, ControlInputError, NotFoundError } from './errors.js'
import type { ActorOptions } from './keys.js'
import type { Tables, TeamsTable } from './schema.js'
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
  requireSlug,
  requireText,
} from './validate.js'

export interface Team {
  /** A slug: lowercase letters, digits, `_`, `.`, `-`. */
  id: string
  name: string
  /** Limits every key of the team shares (one budget for the whole team). */
  limits: LimitOverrides | null
  budgets: Budgets | null
  metadata: JsonObject | null
  createdAt: string
  updatedAt: string
}

export interface TeamInput {
  id: string
  /** Defaults to the id. */
  name?: string
  limits?: unknown
  budgets?: unknown
  metadata?: unknown
}

export type TeamPatch = Partial<Omit<TeamInput, 'id'>>

export interface TeamListQuery {
  /** Part of the id or name, case-insensitive. */
  search?: string
  limit?: number
  offset?: number
}

export interface TeamPage {
  items: Team[]
  total: number
}

function teamOf(row: Selectable<TeamsTable>): Team {
  return {
    id: row.id,
    name: row.name,
    limits: parseJson<LimitOverrides>(row.limits),
    budgets: parseJson<Budgets>(row.budgets),
    metadata: parseJson<JsonObject>(row.metadata),
    createdAt: isoTime(Number(row.created_at)),
    updatedAt: isoTime(Number(row.updated_at)),
  }
}

/** Teams own keys (one level): their limits and budgets apply to all the team's keys together. */
export class TeamStore {
  constructor(private readonly ctx: ControlContext) {}

  async create(input: TeamInput, options: ActorOptions): Promise<Team> {
    const actor = requireActor(options)
    if (typeof input !== 'object' || input === null)
      throw new ControlInputError('team', 'must be an object', input)
    const id = requireSlug(input.id, 'id')
    const fields = this.checkFields(input, ['id', 'name', 'limits', 'budgets', 'metadata'])
    return mutate(this.ctx, async (trx, journal, now) => {
      if ((await this.row(trx, id)) !== undefined)
        throw new ConflictError(`a team with id "${id}" already exists`)
      const row: Selectable<TeamsTable> = {
        id,
        name: fields.name ?? id,
        limits: fields.limits ?? null,
        budgets: fields.budgets ?? null,
        metadata: fields.metadata ?? null,
        created_at: now,
        updated_at: now,
      }
      await trx.insertInto('teams').values(row).execute()
      const team = teamOf(row)
      journal.audit({
        actor,
        action: 'team.create',
        targetKind: 'team',
        targetId: id,
        before: null,
        after: team,
      })
      journal.change('team', id)
      return team
    })
  }

  async get(id: string): Promise<Team> {
    const row = await this.row(this.ctx.db, this.checkId(id))
    if (row === undefined) throw new NotFoundError('team', id)
    return teamOf(row)
  }

  async list(query: TeamListQuery = {}): Promise<TeamPage> {
    const limit = pageLimit(query.limit, 'limit', 100, 1000)
    const offset = pageOffset(query.offset, 'offset')
    let q = this.ctx.db.selectFrom('teams')
    if (query.search !== undefined) {
      const pattern = likePattern(requireText(query.search, 'search').toLowerCase())
      q = q.where(sql<boolean>`(lower(name) like ${pattern} escape '\\' or id like ${pattern} escape '\\')`)
    }
    const [count, rows] = await Promise.all([
      q.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirst(),
      q.selectAll().orderBy('id').limit(limit).offset(offset).execute(),
    ])
    return { items: rows.map(teamOf), total: Number(count?.n ?? 0) }
  }

  async update(id: string, patch: TeamPatch, options: ActorOptions): Promise<Team> {
    const actor = requireActor(options)
    this.checkId(id)
    if (typeof patch !== 'object' || patch === null)
      throw new ControlInputError('patch', 'must be an object', patch)
    const fields = this.checkFields(patch, ['name', 'limits', 'budgets', 'metadata'])
    return mutate(this.ctx, async (trx, journal, now) => {
      const before = await this.row(trx, id, true)
      if (before === undefined) throw new NotFoundError('team', id)
      await trx
        .updateTable('teams')
        .set({ ...fields, updated_at: now })
        .where('id', '=', id)
        .execute()
      const team = teamOf({ ...before, ...fields, updated_at: now })
      journal.audit({
        actor,
        action: 'team.update',
        targetKind: 'team',
        targetId: id,
        before: teamOf(before),
        after: team,
      })
      journal.change('team', id)
      return team
    })
  }

  /**
   * Deletes a team. While keys belong to it this is a ConflictError, unless `force`: then its keys
   * are detached (they keep working, without the team's limits and budgets) and each is announced.
   */
  async delete(id: string, options: ActorOptions & { force?: boolean }): Promise<{ detachedKeys: string[] }> {
    const actor = requireActor(options)
    this.checkId(id)
    return mutate(this.ctx, async (trx, journal) => {
      const before = await this.row(trx, id, true)
      if (before === undefined) throw new NotFoundError('team', id)
      const keys = await trx.selectFrom('keys').select('id').where('team_id', '=', id).orderBy('id').execute()
      const detachedKeys = keys.map((k) => k.id)
      if (detachedKeys.length > 0 && options.force !== true) {
        throw new ConflictError(
          `team "${id}" still owns ${detachedKeys.length} key(s): move or revoke them first, or delete with force`,
        )
      }
      if (detachedKeys.length > 0) {
        await trx.updateTable('keys').set({ team_id: null }).where('team_id', '=', id).execute()
        for (const key of detachedKeys) journal.change('key', key)
      }
      await trx.deleteFrom('teams').where('id', '=', id).execute()
      journal.audit({
        actor,
        action: 'team.delete',
        targetKind: 'team',
        targetId: id,
        before: { ...teamOf(before), keys: detachedKeys },
        after: null,
      })
      journal.change('team', id)
      return { detachedKeys }
    })
  }

  /** One team's row; `lock`: FOR UPDATE on PostgreSQL inside a change (see KeyStore.row). */
  private row(
    db: Kysely<Tables> | Transaction<Tables>,
    id: string,
    lock = false,
  ): Promise<Selectable<TeamsTable> | undefined> {
    const q = db.selectFrom('teams').selectAll().where('id', '=', id)
    return (lock && this.ctx.dialect === 'postgres' ? q.forUpdate() : q).executeTakeFirst()
  }

  private checkId(id: unknown): string {
    if (typeof id !== 'string' || !/^[a-z0-9][a-z0-9_.-]{0,63}$/.test(id)) {
      throw new NotFoundError('team', String(id).slice(0, 64))
    }
    return id
  }

  private checkFields(input: object, known: string[]): Partial<Selectable<TeamsTable>> {
    for (const field of Object.keys(input)) {
      if (!known.includes(field))
        throw new ControlInputError(field.slice(0, 64), `is not a team field (${known.join(', ')})`)
    }
    const i = input as TeamPatch
    const set: Partial<Selectable<TeamsTable>> = {}
    if (i.name !== undefined) set.name = requireText(i.name, 'name')
    const limits = limitsText(i.limits, 'limits', this.ctx.validation.limits)
    if (limits !== undefined) set.limits = limits
    const budgets = budgetsText(i.budgets, 'budgets')
    if (budgets !== undefined) set.budgets = budgets
    const metadata = jsonObjectText(i.metadata, 'metadata', 8192)
    if (metadata !== undefined) set.metadata = metadata
    return set
  }
}
