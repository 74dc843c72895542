/**
 * Charges the database ledger's rows again after a restart of the embedded default (memory
 * store): the rows written after the snapshot was taken (the last second before a `kill -9`) are
 * charged to every level the request was decided on — the key's own limiter (its tier's limits
 * with the key's overrides and budgets), its team's and its end user's (control-levels.ts) — so
 * a budget spent before the kill stays spent, whichever level it belongs to.
 *
 * A replayed row is charged unconditionally (as a settle charges an actual cost above its
 * estimate): a level that is already over its limit, or a subject that is blocked, still gets the
 * row's cost, so the counts end where they were before the kill.
 */
import type { Logger } from 'pino'
import { Composite, type Level } from '../compose.js'
import type { Control } from '../control/control.js'
import { ControlInputError, NotFoundError } from '../control/errors.js'
import type { LedgerRow } from '../control/ledger-rows.js'
import { isInFlight } from '../core/limits.js'
import type { IdentityKind } from '../http/events.js'
import type { Identity } from '../http/identity.js'
import { type KeyRecord, MemoryKeyRegistry, type Sluice } from '../http/index.js'
import type { ExtraLevels } from '../http/levels.js'
import type { Costs } from '../limiter.js'
import { nextOpId } from '../op-id.js'
import type { Store } from '../store/types.js'
import { ControlKeyRegistry } from './control-keys.js'
import type { GatewayControl } from './control-plane.js'

export interface ReplaySources {
  control: Control
  /** The team and end-user levels of an identity, as the request path builds them. */
  levelsOf?: (identity: Identity, store: Store) => ExtraLevels | undefined | Promise<ExtraLevels | undefined>
  logger: Logger
}

/** The gateway's replay: its database, its team and user levels, its HTTP core. */
export function ledgerReplay(
  plane: Pick<GatewayControl, 'control' | 'levels'>,
  sluice: Sluice,
  logger: Logger,
): (since: number) => Promise<number> {
  const sources: ReplaySources = {
    control: plane.control,
    levelsOf: (identity, store) => plane.levels.levelsOf(identity, store),
    logger,
  }
  return (since) => replayLedger(sources, sluice, since)
}

const PAGE = 1000
const MAX_PAGES = 1000

/** Charges the ledger's rows written after `since` (epoch ms) again; returns how many. */
export async function replayLedger(sources: ReplaySources, sluice: Sluice, since: number): Promise<number> {
  const { control } = sources
  const keys = new ReplayKeys(control, sluice)
  let replayed = 0
  let failed = 0
  let cursor: string | undefined
  await control.ledger.flush().catch(() => {})
  for (let page = 0; page < MAX_PAGES; page++) {
    const rows = await control.usage.rows({ from: since + 1, limit: PAGE, ...(cursor && { cursor }) })
    for (const row of rows.items) {
      try {
        if (await replayRow(row, sources, sluice, keys)) replayed++
      } catch (error) {
        // One row that cannot be charged (a tier or a key's limits that no longer fit) costs that row.
        if (failed++ === 0)
          sources.logger.error(
            { err: error, subject: row.subject, tier: row.tier },
            'a ledger row cannot be charged again after the restart; rows like it are left out',
          )
      }
    }
    if (rows.next === null || rows.next === undefined) break
    cursor = rows.next
  }
  if (failed > 0) sources.logger.warn({ failed }, `${failed} ledger rows were not charged again`)
  return replayed
}

/** Charges one row to the levels its request was decided on; false when it charged nothing. */
async function replayRow(
  row: LedgerRow,
  sources: ReplaySources,
  sluice: Sluice,
  keys: ReplayKeys,
): Promise<boolean> {
  if (!row.limited || row.subject === null || row.tier === null) return false
  if (!Object.hasOwn(sluice.tiers, row.tier) || (row.tokens === 0 && row.usd === 0)) return false
  const identity = await identityOf(row, row.subject, row.tier, sluice, keys)
  if (identity === undefined) return false
  const limiter = sluice.limiterFor(identity)
  const extra = await sources.levelsOf?.(identity, limiter.store)
  const levels: Level[] = [{ limiter, subject: identity.subject }, ...(extra?.levels ?? [])]
  const hashTag = extra?.hashTag
  const composite = new Composite(levels, hashTag === undefined ? {} : { hashTag })
  const charged: Costs = { requests: 1, tokens: row.tokens, usd: row.usd }
  const costs: Costs = {}
  for (const [unit, amount] of Object.entries(charged)) {
    if (levels.some((l) => l.limiter.knowsUnit(unit))) costs[unit] = amount
  }
  const perLevel = composite.costsOf(costs).map((c, i) =>
    // Concurrency slots were freed when the call ended: nothing of them to charge again.
    c.map((amount, j) => (isInFlight(levels[i]!.limiter.definitions[j]!.kind) ? 0 : amount)),
  )
  const id = nextOpId()
  const now = Date.now()
  const ops = levels.map((level, i) =>
    level.limiter.adjustOp(
      level.subject,
      id,
      perLevel[i]!,
      perLevel[i]!.map(() => 0),
      now,
      false,
      undefined,
      hashTag,
    ),
  )
  await composite.execute(ops, perLevel, false)
  return true
}

/** The identity a row's request had, as far as its levels go (its key, team and end user). */
async function identityOf(
  row: LedgerRow,
  subject: string,
  tier: string,
  sluice: Sluice,
  keys: ReplayKeys,
): Promise<Identity | undefined> {
  const kind = subject.slice(0, subject.indexOf(':')) as IdentityKind
  if (kind !== 'key' && kind !== 'user' && kind !== 'ip') return undefined
  const identity: Identity = {
    kind,
    subject,
    tier,
    scope: sluice.tiers[tier]!.scope,
    ip: undefined,
    ipGroup: undefined,
  }
  if (row.user !== null) identity.userId = row.user
  if (row.keyId === null) return identity
  identity.keyId = row.keyId
  const record = await keys.record(row.keyId)
  if (record !== undefined) {
    // The team the request was charged to (the key may have moved since).
    const team = row.team ?? undefined
    identity.key = record.team === team ? record : withTeam(record, team)
  }
  return identity
}

function withTeam(record: KeyRecord, team: string | undefined): KeyRecord {
  const { team: _, ...rest } = record
  return team === undefined ? rest : { ...rest, team }
}

/** Key records by id for the replay: sluice.yaml's, then the database's (read once per key). */
class ReplayKeys {
  private readonly known = new Map<string, KeyRecord | undefined>()
  private yaml: Map<string, KeyRecord> | undefined

  constructor(
    private readonly control: Control,
    private readonly sluice: Sluice,
  ) {}

  async record(id: string): Promise<KeyRecord | undefined> {
    if (this.known.has(id)) return this.known.get(id)
    const registry = this.sluice.keys
    if (this.yaml === undefined) {
      this.yaml = new Map()
      if (registry instanceof MemoryKeyRegistry) for (const r of registry.records()) this.yaml.set(r.id, r)
    }
    let record = this.yaml.get(id)
    if (record === undefined && registry instanceof ControlKeyRegistry) {
      try {
        record = registry.recordOf(await this.control.keys.get(id))
      } catch (error) {
        if (!(error instanceof NotFoundError || error instanceof ControlInputError)) throw error
      }
    }
    if (this.known.size >= 100_000) this.known.clear()
    this.known.set(id, record)
    return record
  }
}
