import { type Kysely, type RawBuilder, type SelectQueryBuilder, sql } from 'kysely'
import { type CalendarPeriod, periodBounds } from '../core/period.js'
import { decodeCursor, encodeCursor } from './cursor.js'
import { ControlInputError } from './errors.js'
import { type LedgerRow, ledgerRowOf, REFUSED_OUTCOMES } from './ledger-rows.js'
import type { Tables } from './schema.js'
import { pageLimit, requireText, timeInput } from './validate.js'

export type UsageGroup =
  | 'key'
  | 'team'
  | 'user'
  | 'model'
  | 'tier'
  | 'status'
  | 'outcome'
  | 'route'
  | 'upstream'
  | 'reason'
  | 'day'

const GROUP_COLUMNS = {
  key: 'key_id',
  team: 'team_id',
  user: 'user_id',
  model: 'model',
  tier: 'tier',
  status: 'status',
  outcome: 'outcome',
  route: 'route',
  upstream: 'upstream',
  reason: 'reason',
} as const

/** Filters shared by totals and rows. Times: ISO, epoch ms or Date; `from` inclusive, `to` exclusive. */
export interface LedgerFilter {
  from?: string | number | Date
  to?: string | number | Date
  key?: string
  team?: string
  user?: string
  model?: string
  tier?: string
  status?: number
  outcome?: string
}

export interface UsageQuery extends LedgerFilter {
  /** Totals per value of this field; absent: one grand total. `day` is the calendar day (UTC by default). */
  groupBy?: UsageGroup
  /** For `day`: the fixed UTC offset whose midnights split days (minutes, default 0). */
  utcOffsetMinutes?: number
  /** Order of the groups: by the group value (default), or the largest first. */
  sort?: 'group' | 'requests' | 'tokens' | 'usd'
  /** Groups returned at most (default 1,000, up to 10,000). */
  limit?: number
}

export interface UsageTotals {
  /** The group's value (a key id, a model, `2026-11-27` for a day…); null for rows without one. */
  group: string | number | null
  requests: number
  /** outcome `ok`. */
  served: number
  /** Refused by the gateway before any upstream call (REFUSED_OUTCOMES). */
  refused: number
  /** The rest: reached the upstream and failed, or were aborted or cut. */
  failed: number
  promptTokens: number
  cachedTokens: number
  /** Written to the 5-minute cache. */
  cacheWriteTokens: number
  /** Written to the 1-hour cache. */
  cacheWrite1hTokens: number
  completionTokens: number
  reasoningTokens: number
  /** Tokens charged to limits. */
  tokens: number
  usd: number
  usdInput: number
  usdCached: number
  usdCacheWrite: number
  usdOutput: number
  /** Requests that waited in a queue (docs/queueing.md), and their waits summed (ms). */
  queued: number
  queueMs: number
}

export interface LedgerQuery extends LedgerFilter {
  /** Newest first; 1..1000 a page (default 100). */
  limit?: number
  cursor?: string
}

export interface LedgerPage {
  items: LedgerRow[]
  next?: string
}

/** The bucket sizes of a time series. */
export const SERIES_STEPS = {
  '1m': 60_000,
  '5m': 300_000,
  '15m': 900_000,
  '1h': 3_600_000,
  '1d': 86_400_000,
} as const
export type SeriesStep = keyof typeof SERIES_STEPS
/** Buckets one series may hold (a day by the minute is 1,440). */
export const MAX_SERIES_POINTS = 1500

export interface SeriesQuery extends LedgerFilter {
  /** Start of the range (required), inclusive. */
  from: string | number | Date
  /** End of the range, exclusive (default: the clock's now). */
  to?: string | number | Date
  /** Bucket size; buckets are aligned to the epoch (a `1d` bucket starts at 00:00 UTC). Default 1m. */
  step?: SeriesStep
}

/** One bucket of a series: what the ledger recorded in [time, time + step). */
export interface SeriesPoint {
  /** Start of the bucket (epoch ms). */
  time: number
  requests: number
  served: number
  /** Refused by the gateway before any upstream call (REFUSED_OUTCOMES). */
  refused: number
  /** Answered 429 (a limit, a budget or a block). */
  rateLimited: number
  failed: number
  /** Tokens charged to limits. */
  tokens: number
  usd: number
}

export interface UsageSeries {
  from: number
  to: number
  step: SeriesStep
  stepMs: number
  /** Every bucket from the one holding `from` to the one holding `to - 1`, empty ones included. */
  points: SeriesPoint[]
}

export type SpendScope = 'key' | 'team' | 'user'
export interface Spend {
  usd: number
  tokens: number
  requests: number
}

const DAY = 86_400_000
type LedgerSelect = SelectQueryBuilder<Tables, 'ledger', object>

/** Questions about the ledger: totals, rows, and spend per period (to rebuild budgets). */
export class UsageQueries {
  constructor(private readonly db: Kysely<Tables>) {}

  async totals(query: UsageQuery = {}): Promise<UsageTotals[]> {
    const limit = pageLimit(query.limit, 'limit', 1000, 10_000)
    const groupBy = query.groupBy
    if (groupBy !== undefined && groupBy !== 'day' && !(groupBy in GROUP_COLUMNS)) {
      throw new ControlInputError(
        'groupBy',
        `must be one of ${[...Object.keys(GROUP_COLUMNS), 'day'].join(', ')}`,
        groupBy,
      )
    }
    const offset = query.utcOffsetMinutes ?? 0
    if (!Number.isInteger(offset) || offset < -720 || offset > 840) {
      throw new ControlInputError('utcOffsetMinutes', 'must be whole minutes from -720 to 840', offset)
    }
    const sort = query.sort ?? 'group'
    if (!['group', 'requests', 'tokens', 'usd'].includes(sort)) {
      throw new ControlInputError('sort', 'must be group, requests, tokens or usd', sort)
    }
    const refused = sql.join(REFUSED_OUTCOMES.map((o) => sql.lit(o)))
    const group: RawBuilder<unknown> =
      groupBy === undefined
        ? sql`null`
        : groupBy === 'day'
          ? // Literals, not parameters: SQLite would bind a parameter as REAL and divide in floating point.
            sql`(time + ${sql.lit(offset * 60_000)}) / ${sql.lit(DAY)}`
          : sql.ref(GROUP_COLUMNS[groupBy])
    let q = this.filtered(query).select([
      group.as('grp') as never,
      sql<number>`count(*)`.as('requests'),
      sql<number>`coalesce(sum(case when outcome = 'ok' then 1 else 0 end), 0)`.as('served'),
      sql<number>`coalesce(sum(case when outcome in (${refused}) then 1 else 0 end), 0)`.as('refused'),
      sql<number>`coalesce(sum(prompt_tokens), 0)`.as('prompt_tokens'),
      sql<number>`coalesce(sum(cached_tokens), 0)`.as('cached_tokens'),
      sql<number>`coalesce(sum(cache_write_tokens), 0)`.as('cache_write_tokens'),
      sql<number>`coalesce(sum(cache_write_1h_tokens), 0)`.as('cache_write_1h_tokens'),
      sql<number>`coalesce(sum(completion_tokens), 0)`.as('completion_tokens'),
      sql<number>`coalesce(sum(reasoning_tokens), 0)`.as('reasoning_tokens'),
      sql<number>`coalesce(sum(tokens), 0)`.as('tokens'),
      sql<number>`coalesce(sum(usd), 0)`.as('usd'),
      sql<number>`coalesce(sum(usd_input), 0)`.as('usd_input'),
      sql<number>`coalesce(sum(usd_cached), 0)`.as('usd_cached'),
      sql<number>`coalesce(sum(usd_cache_write), 0)`.as('usd_cache_write'),
      sql<number>`coalesce(sum(usd_output), 0)`.as('usd_output'),
      sql<number>`count(queue_ms)`.as('queued'),
      sql<number>`coalesce(sum(queue_ms), 0)`.as('queue_ms'),
    ])
    if (groupBy !== undefined) {
      q = q.groupBy(sql`1` as never)
      // NULLS FIRST in both: PostgreSQL would put them last, SQLite first.
      const byGroup = sql`1 asc nulls first`
      q = sort === 'group' ? q.orderBy(byGroup) : q.orderBy(sql.ref(sort), 'desc').orderBy(byGroup)
    }
    const rows = (await q.limit(limit).execute()) as unknown as Record<string, unknown>[]
    return rows
      .filter((r) => groupBy !== undefined || Number(r.requests) > 0)
      .map((r) => {
        const requests = Number(r.requests)
        const served = Number(r.served)
        const refusedCount = Number(r.refused)
        let value = r.grp as string | number | null
        if (groupBy === 'day' && value !== null)
          value = new Date(Number(value) * DAY).toISOString().slice(0, 10)
        if (groupBy === 'status' && value !== null) value = Number(value)
        return {
          group: value,
          requests,
          served,
          refused: refusedCount,
          failed: requests - served - refusedCount,
          promptTokens: Number(r.prompt_tokens),
          cachedTokens: Number(r.cached_tokens),
          cacheWriteTokens: Number(r.cache_write_tokens),
          cacheWrite1hTokens: Number(r.cache_write_1h_tokens),
          completionTokens: Number(r.completion_tokens),
          reasoningTokens: Number(r.reasoning_tokens),
          tokens: Number(r.tokens),
          usd: Number(r.usd),
          usdInput: Number(r.usd_input),
          usdCached: Number(r.usd_cached),
          usdCacheWrite: Number(r.usd_cache_write),
          usdOutput: Number(r.usd_output),
          queued: Number(r.queued),
          queueMs: Number(r.queue_ms),
        }
      })
  }

  /**
   * Requests, refusals, tokens and dollars per bucket (a minute, an hour…) over [from, to), for
   * the plots: one GROUP BY on the (time, id) index's range, every bucket returned, empty or not.
   */
  async series(query: SeriesQuery, now: number = Date.now()): Promise<UsageSeries> {
    const step = query.step ?? '1m'
    const stepMs = SERIES_STEPS[step as SeriesStep]
    if (stepMs === undefined) {
      throw new ControlInputError('step', `must be one of ${Object.keys(SERIES_STEPS).join(', ')}`, step)
    }
    const from = timeInput(query.from, 'from')
    if (from === undefined || from === null)
      throw new ControlInputError('from', 'is required (the start of the range)')
    const toInput = timeInput(query.to, 'to')
    const to = toInput === undefined || toInput === null ? now : toInput
    if (to <= from) throw new ControlInputError('to', 'must be after from', query.to)
    const first = Math.floor(from / stepMs) * stepMs
    const count = Math.ceil((to - first) / stepMs)
    if (count > MAX_SERIES_POINTS) {
      throw new ControlInputError(
        'step',
        `makes ${count} buckets over this range, more than ${MAX_SERIES_POINTS}: take a larger step or a shorter range`,
        step,
      )
    }
    const refused = sql.join(REFUSED_OUTCOMES.map((o) => sql.lit(o)))
    const rows = (await this.filtered({ ...query, from, to })
      .select([
        // A literal, not a parameter: SQLite would bind a parameter as REAL and divide in floating point.
        sql<number>`time / ${sql.lit(stepMs)}`.as('bucket'),
        sql<number>`count(*)`.as('requests'),
        sql<number>`coalesce(sum(case when outcome = 'ok' then 1 else 0 end), 0)`.as('served'),
        sql<number>`coalesce(sum(case when outcome in (${refused}) then 1 else 0 end), 0)`.as('refused'),
        sql<number>`coalesce(sum(case when status = 429 then 1 else 0 end), 0)`.as('rate_limited'),
        sql<number>`coalesce(sum(tokens), 0)`.as('tokens'),
        sql<number>`coalesce(sum(usd), 0)`.as('usd'),
      ])
      .groupBy(sql`1` as never)
      .execute()) as unknown as Record<string, unknown>[]
    const byBucket = new Map(rows.map((r) => [Number(r.bucket) * stepMs, r]))
    const points: SeriesPoint[] = []
    for (let i = 0; i < count; i++) {
      const time = first + i * stepMs
      const r = byBucket.get(time)
      const requests = Number(r?.requests ?? 0)
      const served = Number(r?.served ?? 0)
      const refusedCount = Number(r?.refused ?? 0)
      points.push({
        time,
        requests,
        served,
        refused: refusedCount,
        rateLimited: Number(r?.rate_limited ?? 0),
        failed: requests - served - refusedCount,
        tokens: Number(r?.tokens ?? 0),
        usd: Number(r?.usd ?? 0),
      })
    }
    return { from, to, step, stepMs, points }
  }

  /** Ledger rows, newest first, a page at a time (keyset on time and id: stable under inserts). */
  async rows(query: LedgerQuery = {}): Promise<LedgerPage> {
    const limit = pageLimit(query.limit, 'limit', 100, 1000)
    let q = this.filtered(query).selectAll()
    if (query.cursor !== undefined) {
      const [time, id] = decodeCursor(query.cursor, 'cursor', 2) as [number, number]
      q = q.where((eb) => eb.or([eb('time', '<', time), eb.and([eb('time', '=', time), eb('id', '<', id)])]))
    }
    const rows = await q
      .orderBy('time', 'desc')
      .orderBy('id', 'desc')
      .limit(limit + 1)
      .execute()
    const items = rows.slice(0, limit).map(ledgerRowOf)
    const last = rows[limit - 1]
    return rows.length > limit && last
      ? { items, next: encodeCursor([Number(last.time), Number(last.id)]) }
      : { items }
  }

  /**
   * USD, tokens and requests charged (rows with `limited`) per key, team or user from `from` to `to`
   * — what a restarted gateway needs to rebuild budgets of the current period exactly.
   * `ids` narrows it to some owners; otherwise every owner with spend in the range.
   */
  async spend(
    scope: SpendScope,
    range: { from: number; to?: number; ids?: readonly string[] },
  ): Promise<Map<string, Spend>> {
    const column =
      scope === 'key' ? 'key_id' : scope === 'team' ? 'team_id' : scope === 'user' ? 'user_id' : undefined
    if (column === undefined) throw new ControlInputError('scope', 'must be key, team or user', scope)
    const from = timeInput(range.from, 'from')
    if (from === undefined || from === null)
      throw new ControlInputError('from', 'is required (the start of the range)')
    let q = this.db
      .selectFrom('ledger')
      .select([
        sql.ref<string>(column).as('owner'),
        sql<number>`coalesce(sum(usd), 0)`.as('usd'),
        sql<number>`coalesce(sum(tokens), 0)`.as('tokens'),
        sql<number>`count(*)`.as('requests'),
      ])
      .where('limited', '=', 1)
      .where(column, 'is not', null)
      .where('time', '>=', from)
    const to = timeInput(range.to, 'to')
    if (to !== undefined && to !== null) q = q.where('time', '<', to)
    if (range.ids !== undefined) {
      if (range.ids.length === 0) return new Map()
      q = q.where(column, 'in', [...range.ids])
    }
    const rows = await q.groupBy(column).execute()
    return new Map(
      rows.map((r) => [
        String(r.owner),
        { usd: Number(r.usd), tokens: Number(r.tokens), requests: Number(r.requests) },
      ]),
    )
  }

  /** The spend of one owner in the calendar period containing `now`. */
  async spendInPeriod(
    scope: SpendScope,
    id: string,
    period: CalendarPeriod,
    now: number,
    utcOffsetMinutes = 0,
  ): Promise<Spend & { start: number; end: number }> {
    const { start, end } = periodBounds(period, now, utcOffsetMinutes)
    const spent = (await this.spend(scope, { from: start, to: end, ids: [id] })).get(id)
    return { usd: 0, tokens: 0, requests: 0, ...spent, start, end }
  }

  private filtered(f: LedgerFilter): LedgerSelect {
    let q: LedgerSelect = this.db.selectFrom('ledger')
    const from = timeInput(f.from, 'from')
    const to = timeInput(f.to, 'to')
    if (from !== undefined && from !== null) q = q.where('time', '>=', from)
    if (to !== undefined && to !== null) q = q.where('time', '<', to)
    const eq = (
      column: 'key_id' | 'team_id' | 'user_id' | 'model' | 'tier' | 'outcome',
      value: unknown,
      field: string,
    ) => {
      if (value !== undefined) q = q.where(column, '=', requireText(value, field, 256))
    }
    eq('key_id', f.key, 'key')
    eq('team_id', f.team, 'team')
    eq('user_id', f.user, 'user')
    eq('model', f.model, 'model')
    eq('tier', f.tier, 'tier')
    eq('outcome', f.outcome, 'outcome')
    if (f.status !== undefined) {
      if (!Number.isInteger(f.status) || f.status < 0 || f.status > 999) {
        throw new ControlInputError('status', 'must be an HTTP status', f.status)
      }
      q = q.where('status', '=', f.status)
    }
    return q
  }
}
