import { type Kysely, type Selectable, sql, type Transaction } from 'kysely'
import { budgetsText } from './budgets.js'
import { type ControlContext, mutate } from './context.js'
import { ConflictError, ControlInputError, NotFoundError } from './errors.js'
import {
  formatKey,
  generatePublicId,
  generateSecret,
  hashSecret,
  isPublicId,
  parseKey,
} from './key-format.js'
import { keyQueueText } from './key-queue.js'
import {
  credentialsOf,
  type IssuedKey,
  type KeyCredentials,
  type KeyInfo,
  type KeyStatus,
  keyInfoOf,
  secretOpens,
} from './key-records.js'
import type { KeysTable, Tables } from './schema.js'
import {
  jsonObjectText,
  likePattern,
  limitsText,
  optionalText,
  pageLimit,
  pageOffset,
  requireActor,
  requireSlug,
  requireText,
  requireUserId,
  timeInput,
} from './validate.js'

export interface KeyInput {
  name: string
  tier: string
  /** A team id (the team must exist). */
  team?: string | null
  user?: string | null
  limits?: unknown
  /** Queue settings over the tier's (KeyQueue); null: the tier's. */
  queue?: unknown
  budgets?: unknown
  /** ISO 8601, epoch ms or a Date; after it the key is `expired`. */
  expiresAt?: string | number | Date | null
  metadata?: unknown
}

/** Fields to change; absent fields stay as they are, null clears an optional one. */
export type KeyPatch = Partial<KeyInput>

export interface KeyListQuery {
  team?: string
  tier?: string
  user?: string
  status?: KeyStatus
  /** Part of the name or the id, case-insensitive. */
  search?: string
  sort?: 'created' | 'name' | 'lastUsed' | 'expires'
  order?: 'asc' | 'desc'
  /** 1..1000, default 100. */
  limit?: number
  offset?: number
}

export interface KeyPage {
  items: KeyInfo[]
  /** How many keys match the filters, over all pages. */
  total: number
}

export interface ActorOptions {
  /** Who makes the change, for the audit log (e.g. `admin-api:ops-token`, `cli:alice`). */
  actor: string
}

/** The longest grace a rotation may give the old secret. */
export const MAX_ROTATION_GRACE_MS = 30 * 86_400_000

const SORT_COLUMNS = {
  created: 'created_at',
  name: 'name',
  lastUsed: 'last_used_at',
  expires: 'expires_at',
} as const
const STATUSES: readonly string[] = ['active', 'revoked', 'expired']

/** Virtual API keys: issue, list, change, revoke, rotate, and check a presented key. */
export class KeyStore {
  constructor(private readonly ctx: ControlContext) {}

  /** Issues a key. The answer's `key` is the only time the secret is ever shown. */
  async create(input: KeyInput, options: ActorOptions): Promise<IssuedKey> {
    const actor = requireActor(options)
    if (typeof input !== 'object' || input === null)
      throw new ControlInputError('key', 'must be an object', input)
    const fields = this.checkFields(input, true)
    const secret = generateSecret()
    return mutate(this.ctx, async (trx, journal, now) => {
      if (fields.team_id) await this.requireTeam(trx, fields.team_id)
      let id = generatePublicId()
      // 50 random bits: a collision is astronomically rare, but a retry costs nothing.
      for (let i = 0; i < 3 && (await this.row(trx, id)) !== undefined; i++) id = generatePublicId()
      const row: Selectable<KeysTable> = {
        id,
        name: fields.name!,
        tier: fields.tier!,
        team_id: fields.team_id ?? null,
        user_id: fields.user_id ?? null,
        secret_hash: hashSecret(secret),
        previous_secret_hash: null,
        previous_expires_at: null,
        limits: fields.limits ?? null,
        queue: fields.queue ?? null,
        budgets: fields.budgets ?? null,
        metadata: fields.metadata ?? null,
        expires_at: fields.expires_at ?? null,
        revoked_at: null,
        created_at: now,
        updated_at: now,
        last_used_at: null,
      }
      await trx.insertInto('keys').values(row).execute()
      const info = keyInfoOf(row, now)
      journal.audit({
        actor,
        action: 'key.create',
        targetKind: 'key',
        targetId: id,
        before: null,
        after: info,
      })
      journal.change('key', id)
      return { ...info, key: formatKey(id, secret) }
    })
  }

  async get(id: string): Promise<KeyInfo> {
    const row = await this.row(this.ctx.db, this.checkId(id))
    if (row === undefined) throw new NotFoundError('key', id)
    return keyInfoOf(row, this.ctx.now())
  }

  async list(query: KeyListQuery = {}): Promise<KeyPage> {
    const limit = pageLimit(query.limit, 'limit', 100, 1000)
    const offset = pageOffset(query.offset, 'offset')
    const sort = query.sort ?? 'created'
    if (!(sort in SORT_COLUMNS))
      throw new ControlInputError('sort', 'must be created, name, lastUsed or expires', sort)
    const order = query.order ?? (sort === 'name' ? 'asc' : 'desc')
    if (order !== 'asc' && order !== 'desc')
      throw new ControlInputError('order', 'must be asc or desc', order)
    if (query.status !== undefined && !STATUSES.includes(query.status)) {
      throw new ControlInputError('status', 'must be active, revoked or expired', query.status)
    }
    const now = this.ctx.now()
    let q = this.ctx.db.selectFrom('keys')
    if (query.team !== undefined) q = q.where('team_id', '=', requireSlug(query.team, 'team'))
    if (query.tier !== undefined) q = q.where('tier', '=', requireText(query.tier, 'tier', 64))
    if (query.user !== undefined) q = q.where('user_id', '=', requireUserId(query.user, 'user'))
    if (query.status === 'revoked') q = q.where('revoked_at', 'is not', null)
    if (query.status === 'expired') q = q.where('revoked_at', 'is', null).where('expires_at', '<=', now)
    if (query.status === 'active') {
      q = q
        .where('revoked_at', 'is', null)
        .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]))
    }
    if (query.search !== undefined) {
      const pattern = likePattern(requireText(query.search, 'search', 200).toLowerCase())
      q = q.where(sql<boolean>`(lower(name) like ${pattern} escape '\\' or id like ${pattern} escape '\\')`)
    }
    const [count, rows] = await Promise.all([
      q.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirst(),
      q
        .selectAll()
        .orderBy(SORT_COLUMNS[sort], order)
        .orderBy('id', order)
        .limit(limit)
        .offset(offset)
        .execute(),
    ])
    return { items: rows.map((r) => keyInfoOf(r, now)), total: Number(count?.n ?? 0) }
  }

  async update(id: string, patch: KeyPatch, options: ActorOptions): Promise<KeyInfo> {
    const actor = requireActor(options)
    this.checkId(id)
    if (typeof patch !== 'object' || patch === null)
      throw new ControlInputError('patch', 'must be an object', patch)
    const fields = this.checkFields(patch, false)
    return mutate(this.ctx, async (trx, journal, now) => {
      const before = await this.row(trx, id, true)
      if (before === undefined) throw new NotFoundError('key', id)
      if (fields.team_id) await this.requireTeam(trx, fields.team_id)
      const after: Selectable<KeysTable> = { ...before, ...fields, updated_at: now }
      await trx
        .updateTable('keys')
        .set({ ...fields, updated_at: now })
        .where('id', '=', id)
        .execute()
      const info = keyInfoOf(after, now)
      journal.audit({
        actor,
        action: 'key.update',
        targetKind: 'key',
        targetId: id,
        before: keyInfoOf(before, now),
        after: info,
      })
      journal.change('key', id)
      return info
    })
  }

  /** Revokes a key at once (401 everywhere within a second). Revoking twice changes nothing. */
  async revoke(id: string, options: ActorOptions): Promise<KeyInfo> {
    const actor = requireActor(options)
    this.checkId(id)
    return mutate(this.ctx, async (trx, journal, now) => {
      const before = await this.row(trx, id, true)
      if (before === undefined) throw new NotFoundError('key', id)
      if (before.revoked_at !== null) return keyInfoOf(before, now)
      const after = { ...before, revoked_at: now, updated_at: now }
      await trx.updateTable('keys').set({ revoked_at: now, updated_at: now }).where('id', '=', id).execute()
      const info = keyInfoOf(after, now)
      journal.audit({
        actor,
        action: 'key.revoke',
        targetKind: 'key',
        targetId: id,
        before: keyInfoOf(before, now),
        after: info,
      })
      journal.change('key', id)
      return info
    })
  }

  /**
   * Issues a new secret for the key. The old one keeps working for `graceMs` (default 0: it stops
   * at once); only one previous secret is kept, so rotating again ends the earlier grace.
   */
  async rotate(id: string, options: ActorOptions & { graceMs?: number }): Promise<IssuedKey> {
    const actor = requireActor(options)
    this.checkId(id)
    const grace = options.graceMs ?? 0
    if (
      typeof grace !== 'number' ||
      !Number.isSafeInteger(grace) ||
      grace < 0 ||
      grace > MAX_ROTATION_GRACE_MS
    ) {
      throw new ControlInputError(
        'graceMs',
        `must be whole milliseconds from 0 to ${MAX_ROTATION_GRACE_MS} (30 days)`,
        grace,
      )
    }
    const secret = generateSecret()
    return mutate(this.ctx, async (trx, journal, now) => {
      const before = await this.row(trx, id, true)
      if (before === undefined) throw new NotFoundError('key', id)
      if (before.revoked_at !== null) throw new ConflictError(`key ${id} is revoked: it cannot be rotated`)
      const set = {
        secret_hash: hashSecret(secret),
        previous_secret_hash: grace > 0 ? before.secret_hash : null,
        previous_expires_at: grace > 0 ? now + grace : null,
        updated_at: now,
      }
      await trx.updateTable('keys').set(set).where('id', '=', id).execute()
      const info = keyInfoOf({ ...before, ...set }, now)
      journal.audit({
        actor,
        action: 'key.rotate',
        targetKind: 'key',
        targetId: id,
        before: keyInfoOf(before, now),
        after: info,
      })
      journal.change('key', id)
      return { ...info, key: formatKey(id, secret) }
    })
  }

  /** The key and its hashes, for the key cache. Undefined when no key has this id. */
  async credentials(id: string): Promise<KeyCredentials | undefined> {
    if (!isPublicId(id)) return undefined
    const row = await this.row(this.ctx.db, id)
    return row === undefined ? undefined : credentialsOf(row, this.ctx.now())
  }

  /** Ids of the keys that are not revoked (at most `limit`): the key cache's set of known ids. */
  async knownIds(limit: number): Promise<string[]> {
    const rows = await this.ctx.db
      .selectFrom('keys')
      .select('id')
      .where('revoked_at', 'is', null)
      .limit(limit)
      .execute()
    return rows.map((r) => r.id)
  }

  /**
   * The key a presented `sk-sluice-…` string opens, straight from the database (the hot path goes
   * through KeyCache instead). Undefined for a malformed, unknown, wrong, revoked or expired key.
   */
  async verify(presented: string): Promise<KeyInfo | undefined> {
    const parsed = parseKey(presented)
    if (parsed === undefined) return undefined
    const credentials = await this.credentials(parsed.id)
    if (credentials === undefined) return undefined
    return secretOpens(credentials, parsed.secret, this.ctx.now()) ? credentials.info : undefined
  }

  /**
   * One key's row. `lock`: inside a change, on PostgreSQL, FOR UPDATE — two admins changing one
   * key at once take turns, and each audit entry's `before` is what that change replaced. (SQLite
   * transactions start with the write lock: they always take turns.)
   */
  private row(
    db: Kysely<Tables> | Transaction<Tables>,
    id: string,
    lock = false,
  ): Promise<Selectable<KeysTable> | undefined> {
    const q = db.selectFrom('keys').selectAll().where('id', '=', id)
    return (lock && this.ctx.dialect === 'postgres' ? q.forUpdate() : q).executeTakeFirst()
  }

  /** The team must exist, and (PostgreSQL: FOR SHARE) cannot be deleted until this change commits. */
  private async requireTeam(trx: Transaction<Tables>, team: string): Promise<void> {
    const q = trx.selectFrom('teams').select('id').where('id', '=', team)
    const found = await (this.ctx.dialect === 'postgres' ? q.forShare() : q).executeTakeFirst()
    if (found === undefined) throw new ControlInputError('team', 'names no existing team', team)
  }

  private checkId(id: unknown): string {
    if (!isPublicId(id)) throw new NotFoundError('key', String(id).slice(0, 64))
    return id
  }

  /** The columns a create or a patch sets, checked; `full` requires name and tier. */
  private checkFields(input: KeyPatch, full: boolean): Partial<Selectable<KeysTable>> {
    const known = ['name', 'tier', 'team', 'user', 'limits', 'queue', 'budgets', 'expiresAt', 'metadata']
    for (const field of Object.keys(input)) {
      if (!known.includes(field))
        throw new ControlInputError(field.slice(0, 64), `is not a key field (${known.join(', ')})`)
    }
    const set: Partial<Selectable<KeysTable>> = {}
    if (full || input.name !== undefined) set.name = requireText(input.name, 'name')
    if (full || input.tier !== undefined) {
      set.tier = requireText(input.tier, 'tier', 64)
      this.ctx.validation.tier?.(set.tier, 'tier')
    }
    if (input.team !== undefined) set.team_id = input.team === null ? null : requireSlug(input.team, 'team')
    const user = optionalText(input.user, 'user', 256)
    if (user !== undefined) set.user_id = user
    const limits = limitsText(input.limits, 'limits', this.ctx.validation.limits)
    if (limits !== undefined) set.limits = limits
    const queue = keyQueueText(input.queue, 'queue')
    if (queue !== undefined) set.queue = queue
    const budgets = budgetsText(input.budgets, 'budgets')
    if (budgets !== undefined) set.budgets = budgets
    const expires = timeInput(input.expiresAt, 'expiresAt')
    if (expires !== undefined) set.expires_at = expires
    const metadata = jsonObjectText(input.metadata, 'metadata', 8192)
    if (metadata !== undefined) set.metadata = metadata
    return set
  }
}
