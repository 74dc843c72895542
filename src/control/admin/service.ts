import { sql } from 'kysely'
import type { z } from 'zod'
import { periodBounds } from '../../core/period.js'
import { type AuditPage, insertAudit } from '../audit.js'
import type { Control } from '../control.js'
import { withDeadline } from '../deadline.js'
import { ControlInputError } from '../errors.js'
import type { IssuedKey } from '../key-records.js'
import type { LedgerWriterStats } from '../ledger.js'
import { appliedMigrations } from '../migrations/index.js'
import type { Team } from '../teams.js'
import type { LedgerPage, Spend, UsageSeries, UsageTotals } from '../usage.js'
import type { EndUser } from '../users.js'
import { isoTime, timeInput } from '../validate.js'
import {
  type ConfigKeyEntry,
  type ConfigKeyInfo,
  configKeyInfo,
  configKeyMatches,
  type DatabaseKey,
  databaseKey,
  type ListedKey,
  ReadOnlyKeyError,
} from './config-keys.js'
import { parseInput } from './parse.js'
import { printable } from './schemas/common.js'
import { seriesQuerySchema, spendQuerySchema } from './schemas/insights.js'
import { keyCreateSchema, keyListQuerySchema, keyRotateSchema, keyUpdateSchema } from './schemas/keys.js'
import { subjectParamSchema } from './schemas/system.js'
import {
  teamCreateSchema,
  teamDeleteQuerySchema,
  teamListQuerySchema,
  teamUpdateSchema,
  userListQuerySchema,
  userSetSchema,
} from './schemas/teams-users.js'
import { auditQuerySchema, ledgerQuerySchema, usageQuerySchema } from './schemas/usage-audit.js'

/** Who makes a change, for the audit log: `admin-api:<name>`, `cli:<os user>`… */
export interface Actor {
  actor: string
}

export interface AdminServiceOptions {
  control: Control
  /**
   * The tiers a key may name: the configured tier names, or a check. Absent: any name is accepted
   * (only for tools without a config; the gateway and the CLI pass the config's tiers).
   */
  tiers?: readonly string[] | ((tier: string) => boolean)
  /**
   * The keys of sluice.yaml now (config-keys.ts): listed and shown beside the database's, marked
   * read-only; a change to one is refused (409). Absent: none.
   */
  configKeys?: () => Iterable<ConfigKeyEntry>
}

export interface Page<T> {
  items: T[]
  total: number
  limit: number
  offset: number
}

export interface UsageReport {
  groupBy: string | null
  from: string | null
  to: string | null
  items: UsageTotals[]
}

/** A usage series as the API answers it: the range as ISO times, the buckets by epoch ms. */
export interface SeriesReport extends Omit<UsageSeries, 'from' | 'to'> {
  from: string
  to: string
}

export interface SpendReport {
  scope: 'key' | 'team' | 'user'
  period: 'day' | 'week' | 'month'
  start: string
  end: string
  items: (Spend & { id: string })[]
}

export interface DatabaseStatus {
  dialect: 'sqlite' | 'postgres'
  label: string
  reachable: boolean
  latencyMs: number | null
  error: string | null
  schema: string | null
  changeFeed: string
  ledger: LedgerWriterStats
}

const actorSchema = printable(200, 'actor name')
const PING_DEADLINE_MS = 2000

/**
 * The admin operations, over one Control: what the admin API's routes and the CLI's `keys`,
 * `teams`, `users`, `usage` commands call. Every input is `unknown` and checked here with the
 * same zod schemas that describe the HTTP API (openapi.json): a bad one throws a
 * ControlInputError naming the field; an unknown id a NotFoundError; a conflict a ConflictError.
 * Every change takes the actor the audit log records.
 */
export class AdminService {
  readonly control: Control
  private readonly tierCheck: ((tier: string) => boolean) | undefined
  private readonly tierNames: readonly string[] | undefined
  private readonly configKeys: () => Iterable<ConfigKeyEntry>

  constructor(options: AdminServiceOptions) {
    this.control = options.control
    this.configKeys = options.configKeys ?? (() => [])
    const tiers = options.tiers
    if (Array.isArray(tiers)) {
      this.tierNames = [...tiers]
      this.tierCheck = (tier) => this.tierNames!.includes(tier)
    } else if (typeof tiers === 'function') {
      this.tierCheck = tiers as (tier: string) => boolean
    }
  }

  // ------------------------------------------------------------------ keys

  /** Issues a key. The answer's `key` is the only time its secret is shown. */
  async createKey(input: unknown, by: Actor): Promise<IssuedKey & DatabaseKey> {
    const actor = this.actorOf(by)
    const body = parseInput(keyCreateSchema, input, 'body')
    this.checkTier(body.tier)
    return databaseKey(
      await this.control.keys.create({ ...body, limits: rawField(input, 'limits') }, { actor }),
    )
  }

  /**
   * The database's keys, then sluice.yaml's (read-only), filtered alike and paged as one list:
   * `total` counts both. The file's keys keep its order (by name when sorted by name).
   */
  async listKeys(query: unknown = {}): Promise<Page<ListedKey>> {
    const q = parseInput(keyListQuerySchema, query ?? {}, 'query')
    const limit = q.limit ?? 100
    const offset = q.offset ?? 0
    const { source, ...dbQuery } = q
    const fromFile = source === 'database' ? [] : this.listConfigKeys(q)
    if (source === 'sluice.yaml') {
      return { items: fromFile.slice(offset, offset + limit), total: fromFile.length, limit, offset }
    }
    const page = await this.control.keys.list(dbQuery)
    const items: ListedKey[] = page.items.map(databaseKey)
    if (items.length < limit) {
      const start = Math.max(0, offset - page.total)
      items.push(...fromFile.slice(start, start + limit - items.length))
    }
    return { items, total: page.total + fromFile.length, limit, offset }
  }

  async getKey(id: string): Promise<ListedKey> {
    const fromFile = this.configKey(id)
    if (fromFile !== undefined) return fromFile
    return databaseKey(await this.control.keys.get(id))
  }

  async updateKey(id: string, patch: unknown, by: Actor): Promise<DatabaseKey> {
    const actor = this.actorOf(by)
    this.refuseConfigKey(id, 'changed')
    const body = parseInput(keyUpdateSchema, patch, 'body')
    if (body.tier !== undefined) this.checkTier(body.tier)
    return databaseKey(
      await this.control.keys.update(id, { ...body, limits: rawField(patch, 'limits') }, { actor }),
    )
  }

  /** Revokes at once (401 on every gateway within about a second). Revoking twice changes nothing. */
  async revokeKey(id: string, by: Actor): Promise<DatabaseKey> {
    const actor = this.actorOf(by)
    this.refuseConfigKey(id, 'revoked')
    return databaseKey(await this.control.keys.revoke(id, { actor }))
  }

  /** A new secret; the old one keeps working for `grace` ("1h", or ms; default 0). */
  async rotateKey(id: string, options: unknown, by: Actor): Promise<IssuedKey & DatabaseKey> {
    const actor = this.actorOf(by)
    this.refuseConfigKey(id, 'rotated')
    const body = parseInput(keyRotateSchema, options ?? {}, 'body')
    return databaseKey(await this.control.keys.rotate(id, { actor, graceMs: body.grace ?? 0 }))
  }

  private listConfigKeys(q: {
    sort?: string | undefined
    order?: 'asc' | 'desc' | undefined
    team?: string | undefined
    tier?: string | undefined
    user?: string | undefined
    status?: 'active' | 'revoked' | 'expired' | undefined
    search?: string | undefined
  }): ConfigKeyInfo[] {
    const keys = [...this.configKeys()].map(configKeyInfo).filter((k) => configKeyMatches(k, q))
    if (q.sort === 'name') {
      const sign = q.order === 'desc' ? -1 : 1
      keys.sort((a, b) => sign * (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    }
    return keys
  }

  private configKey(id: string): ConfigKeyInfo | undefined {
    for (const entry of this.configKeys()) if (entry.id === id) return configKeyInfo(entry)
    return undefined
  }

  private refuseConfigKey(id: string, action: string): void {
    if (this.configKey(id) !== undefined) throw new ReadOnlyKeyError(id, action)
  }

  // ------------------------------------------------------------------ teams

  async createTeam(input: unknown, by: Actor): Promise<Team> {
    const actor = this.actorOf(by)
    const body = parseInput(teamCreateSchema, input, 'body')
    return this.control.teams.create({ ...body, limits: rawField(input, 'limits') }, { actor })
  }

  async listTeams(query: unknown = {}): Promise<Page<Team>> {
    const q = parseInput(teamListQuerySchema, query ?? {}, 'query')
    const page = await this.control.teams.list(q)
    return { ...page, limit: q.limit ?? 100, offset: q.offset ?? 0 }
  }

  getTeam(id: string): Promise<Team> {
    return this.control.teams.get(id)
  }

  async updateTeam(id: string, patch: unknown, by: Actor): Promise<Team> {
    const actor = this.actorOf(by)
    const body = parseInput(teamUpdateSchema, patch, 'body')
    return this.control.teams.update(id, { ...body, limits: rawField(patch, 'limits') }, { actor })
  }

  /** Refused (409) while keys belong to the team, unless `force`: they are detached. */
  async deleteTeam(
    id: string,
    options: unknown,
    by: Actor,
  ): Promise<{ id: string; deleted: true; detachedKeys: string[] }> {
    const actor = this.actorOf(by)
    const q = parseInput(teamDeleteQuerySchema, options ?? {}, 'query')
    const { detachedKeys } = await this.control.teams.delete(id, { actor, force: q.force === true })
    return { id, deleted: true, detachedKeys }
  }

  // ------------------------------------------------------------------ end users

  /** Creates or changes an end user's overrides; absent fields stay, null clears. */
  async setUser(id: string, input: unknown, by: Actor): Promise<EndUser> {
    const actor = this.actorOf(by)
    const body = parseInput(userSetSchema, input, 'body')
    return this.control.users.set(id, { ...body, limits: rawField(input, 'limits') }, { actor })
  }

  async listUsers(query: unknown = {}): Promise<Page<EndUser>> {
    const q = parseInput(userListQuerySchema, query ?? {}, 'query')
    const page = await this.control.users.list(q)
    return { ...page, limit: q.limit ?? 100, offset: q.offset ?? 0 }
  }

  getUser(id: string): Promise<EndUser> {
    return this.control.users.get(id)
  }

  async deleteUser(id: string, by: Actor): Promise<{ id: string; deleted: true }> {
    await this.control.users.delete(id, { actor: this.actorOf(by) })
    return { id, deleted: true }
  }

  // ------------------------------------------------------------------ usage, ledger, audit

  /** Totals over [from, to), grouped by key, team, user, model, tier, day… */
  async usage(query: unknown = {}): Promise<UsageReport> {
    const q = parseInput(usageQuerySchema, query ?? {}, 'query')
    const items = await this.control.usage.totals(q)
    return { groupBy: q.groupBy ?? null, from: isoOrNull(q.from, 'from'), to: isoOrNull(q.to, 'to'), items }
  }

  /** Requests, refusals, tokens and dollars per bucket over [from, to), every bucket included. */
  async usageSeries(query: unknown = {}, now = Date.now()): Promise<SeriesReport> {
    const q = parseInput(seriesQuerySchema, query ?? {}, 'query')
    const series = await this.control.usage.series(q, now)
    return { ...series, from: isoTime(series.from), to: isoTime(series.to) }
  }

  /** What each owner was charged in the current calendar period (the used part of its budgets). */
  async spend(query: unknown = {}, now = Date.now()): Promise<SpendReport> {
    const q = parseInput(spendQuerySchema, query ?? {}, 'query')
    const { start, end } = periodBounds(q.period, now)
    const ids = q.id === undefined ? undefined : Array.isArray(q.id) ? q.id : [q.id]
    const spent = await this.control.usage.spend(q.scope, { from: start, to: end, ids })
    const items = [...spent]
      .map(([id, s]) => ({ id, ...s }))
      .sort((a, b) => b.usd - a.usd || b.tokens - a.tokens || (a.id < b.id ? -1 : 1))
      .slice(0, q.limit ?? 1000)
    return { scope: q.scope, period: q.period, start: isoTime(start), end: isoTime(end), items }
  }

  /** Ledger rows, newest first, filtered, by keyset pages. */
  ledger(query: unknown = {}): Promise<LedgerPage> {
    return this.control.usage.rows(parseInput(ledgerQuerySchema, query ?? {}, 'query'))
  }

  audit(query: unknown = {}): Promise<AuditPage> {
    return this.control.audit.list(parseInput(auditQuerySchema, query ?? {}, 'query'))
  }

  /** Records an unblock of live limiter state (made by the gateway's limiter) in the audit log. */
  async recordUnblock(subject: string, by: Actor): Promise<void> {
    const actor = this.actorOf(by)
    const target = parseInput(subjectParamSchema, subject, 'subject')
    await insertAudit(
      this.control.database.db,
      {
        actor,
        action: 'subject.unblock',
        targetKind: 'subject',
        targetId: target,
        before: null,
        after: null,
      },
      Date.now(),
    )
  }

  // ------------------------------------------------------------------ status

  /** Whether the database answers (a trivial query with a 2 s deadline), its schema, feed and ledger. */
  async databaseStatus(): Promise<DatabaseStatus> {
    const { control } = this
    const started = performance.now()
    let reachable = true
    let latencyMs: number | null = null
    let error: string | null = null
    let schema: string | null = null
    try {
      await withDeadline(sql`select 1`.execute(control.database.db), PING_DEADLINE_MS, 'the database ping')
      latencyMs = Math.round((performance.now() - started) * 100) / 100
      const applied = await withDeadline(
        appliedMigrations(control.database),
        PING_DEADLINE_MS,
        'reading the schema',
      )
      schema = applied[applied.length - 1] ?? null
    } catch (e) {
      reachable = latencyMs !== null
      error = (e instanceof Error ? e.message : String(e)).slice(0, 300)
    }
    return {
      dialect: control.dialect,
      label: control.label,
      reachable,
      latencyMs,
      error,
      schema,
      changeFeed: control.changes.state,
      ledger: control.ledger.stats(),
    }
  }

  // ------------------------------------------------------------------ checks

  private actorOf(by: Actor): string {
    return parseInput(actorSchema, (by as Partial<Actor> | undefined)?.actor, 'actor')
  }

  private checkTier(tier: string): void {
    if (this.tierCheck === undefined || this.tierCheck(tier)) return
    const known = this.tierNames ? ` (${this.tierNames.join(', ')})` : ''
    throw new ControlInputError('tier', `must be one of the configured tiers${known}`, tier)
  }
}

/**
 * Limit overrides are stored as written (`window: "1h"` stays "1h"), not as the config schema's
 * parsed form (milliseconds): once the schema accepted the body, take the field from the input.
 */
function rawField(input: unknown, field: string): z.core.util.JSONType | undefined {
  return (input as Record<string, z.core.util.JSONType | undefined>)[field]
}

function isoOrNull(value: unknown, field: string): string | null {
  const ms = timeInput(value, field)
  return ms === undefined || ms === null ? null : isoTime(ms)
}
