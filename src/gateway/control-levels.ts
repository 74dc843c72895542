/**
 * The team and end-user levels of database keys: a request with a key of a team is decided against
 * the key's limits, its team's and (when the key names an end user with limits of their own) that
 * user's, in one atomic step (src/http/levels.ts). Budgets (`{usd|tokens: {limit, period}}`) are
 * calendar limits on their level. Teams and users are read from the database once, kept in memory
 * and read again when the change feed names them, so the hot path never waits on the database
 * after the first request of a team.
 */
import type { Logger } from 'pino'
import type { Budgets } from '../control/budgets.js'
import type { Control } from '../control/control.js'
import { NotFoundError } from '../control/errors.js'
import type { LimitOverrides } from '../control/validate.js'
import type { LimitDefinition } from '../core/limits.js'
import type { Identity } from '../http/identity.js'
import type { ExtraLevel, ExtraLevels } from '../http/levels.js'
import { Limiter } from '../limiter.js'
import { StoreUnavailableError } from '../store/errors.js'
import type { Store } from '../store/types.js'
import { budgetLimits, overridesFromConfig } from './control-keys.js'

interface LevelRecord {
  limits: LimitOverrides | null
  budgets: Budgets | null
}

/** A level's limits: its overrides (sluice.yaml's limit form; null entries mean nothing here) and budgets. */
function levelLimits(
  record: LevelRecord,
  id: string,
  utcOffset: string | number,
): Record<string, LimitDefinition> {
  const out: Record<string, LimitDefinition> = {}
  if (record.limits !== null) {
    for (const [name, limit] of Object.entries(overridesFromConfig(record.limits, id))) {
      if (limit !== null) out[name] = limit
    }
  }
  return { ...out, ...budgetLimits(record.budgets, utcOffset) }
}

type Kind = 'team' | 'user'

export interface ControlLevelsOptions {
  control: Control
  prefix: string | undefined
  utcOffset: string | number
  /**
   * The store is a Redis Cluster: the levels of a request of a team then share the hash tag
   * `team:<id>` (one slot, one atomic script). Elsewhere no tag is needed, and none is used, so a
   * key's counters, blocks, `inspect` and `unblock` are the same with or without a team.
   */
  clustered: boolean
  logger: Logger
}

export class ControlLevels {
  /** A record (null: none in the database), or the read in flight. */
  private readonly records = {
    team: new Map<string, LevelRecord | null | Promise<LevelRecord | null>>(),
    user: new Map<string, LevelRecord | null | Promise<LevelRecord | null>>(),
  }
  /** Per record, per store (a tier may have a store of its own): its limiter, or null without limits. */
  private readonly limiters = new WeakMap<LevelRecord, Map<Store, Limiter | null>>()
  private readonly unsubscribe: () => void

  constructor(private readonly o: ControlLevelsOptions) {
    this.unsubscribe = o.control.changes.subscribe((event) => {
      if (event.kind === 'all') {
        this.records.team.clear()
        this.records.user.clear()
      } else if (event.kind === 'team' || event.kind === 'user') {
        this.records[event.kind].delete(event.id)
      }
    })
  }

  /**
   * The levels of an identity besides its own: the team of its key, and the end user it names (the
   * key's user, or a user named by a trusted proxy), when they have limits or budgets. On a Redis Cluster the keys of all levels share the hash tag
   * `team:<id>` when the key has a team (one slot per team), else `user:<id>`.
   */
  levelsOf(identity: Identity, store: Store): ExtraLevels | undefined | Promise<ExtraLevels | undefined> {
    const team = identity.key?.team
    const user = identity.userId
    if (team === undefined && user === undefined) return undefined
    const teamRecord = team === undefined ? null : this.record('team', team)
    const userRecord = user === undefined ? null : this.record('user', user)
    if (teamRecord instanceof Promise || userRecord instanceof Promise) {
      return Promise.all([teamRecord, userRecord]).then(
        ([t, u]) => this.build(store, team, t, user, u),
        (error: unknown) => {
          throw new StoreUnavailableError('the control database did not answer', {
            cause: error,
            retryAfterMs: 1000,
          })
        },
      )
    }
    return this.build(store, team, teamRecord, user, userRecord)
  }

  close(): void {
    this.unsubscribe()
  }

  private build(
    store: Store,
    team: string | undefined,
    teamRecord: LevelRecord | null,
    user: string | undefined,
    userRecord: LevelRecord | null,
  ): ExtraLevels | undefined {
    const levels: ExtraLevel[] = []
    const teamLimiter = team === undefined ? null : this.limiterOf(store, 'team', team, teamRecord)
    if (teamLimiter !== null) levels.push({ name: 'team', limiter: teamLimiter, subject: `team:${team}` })
    const userLimiter = user === undefined ? null : this.limiterOf(store, 'user', user, userRecord)
    if (userLimiter !== null) levels.push({ name: 'user', limiter: userLimiter, subject: `user:${user}` })
    if (levels.length === 0) return undefined
    if (!this.o.clustered) return { levels }
    return { levels, hashTag: team !== undefined ? `team:${team}` : `user:${user}` }
  }

  private record(kind: Kind, id: string): LevelRecord | null | Promise<LevelRecord | null> {
    const map = this.records[kind]
    const known = map.get(id)
    if (known !== undefined) return known
    const source = kind === 'team' ? this.o.control.teams : this.o.control.users
    const read: Promise<LevelRecord | null> = source.get(id).then(
      (r): LevelRecord => ({ limits: r.limits, budgets: r.budgets }),
      (error: unknown) => {
        if (error instanceof NotFoundError) return null
        map.delete(id)
        throw error
      },
    )
    map.set(id, read)
    void read.then(
      (r) => {
        if (map.get(id) === read) map.set(id, r)
      },
      () => {},
    )
    return read
  }

  private limiterOf(store: Store, kind: Kind, id: string, record: LevelRecord | null): Limiter | null {
    if (record === null) return null
    let perStore = this.limiters.get(record)
    if (perStore === undefined) {
      perStore = new Map()
      this.limiters.set(record, perStore)
    }
    const known = perStore.get(store)
    if (known !== undefined) return known
    let limiter: Limiter | null = null
    try {
      const limits = levelLimits(record, `${kind} ${id}`, this.o.utcOffset)
      if (Object.keys(limits).length > 0) {
        limiter = new Limiter({
          store,
          policy: `_${kind}`,
          prefix: this.o.prefix,
          limits,
          block: false,
        })
      }
    } catch (error) {
      this.o.logger.error(
        { err: error, [kind]: id },
        `${kind} ${id}: its limits cannot be used; they are left out`,
      )
    }
    perStore.set(store, limiter)
    return limiter
  }
}
