/**
 * Nothing forgotten on restart with the embedded default (memory store): its counts go to a
 * snapshot file on shutdown and every `snapshot.interval` (1 s) while serving, and come back
 * before the gateway listens. Charges settled after the snapshot was taken (the last second
 * before a `kill -9`) are charged again from the database's ledger rows, so dollar and token
 * budgets are whole after any restart; a call in flight at the snapshot is then counted with
 * both its estimate and its cost (never less than it spent).
 */
import type { Logger } from 'pino'
import type { Control } from '../control/control.js'
import type { Sluice } from '../http/index.js'
import { MemoryStore } from '../store/memory.js'
import {
  type MemorySnapshot,
  readSnapshot,
  restoreSnapshot,
  takeSnapshot,
  writeSnapshot,
} from '../store/memory-snapshot.js'
import type { Store } from '../store/types.js'

export interface Persistence {
  /** Writes the snapshot now (shutdown); stops the timer. */
  close(): Promise<void>
}

/** Restores the last snapshot into `store` and starts writing it; undefined when `store` is not memory. */
export async function startPersistence(options: {
  store: Store
  path: string
  intervalMs: number
  sluice: Sluice
  control: Control | undefined
  logger: Logger
}): Promise<Persistence | undefined> {
  const { store, path, logger } = options
  if (!(store instanceof MemoryStore)) return undefined
  const log = logger.child({ component: 'snapshot' })
  let snapshot: MemorySnapshot | undefined
  try {
    snapshot = await readSnapshot(path)
  } catch (error) {
    log.error({ err: error, path }, `the snapshot ${path} cannot be read: starting with no counts`)
  }
  if (snapshot !== undefined) {
    const restored = restoreSnapshot(store, snapshot)
    const replayed = options.control
      ? await replayLedger(options.control, options.sluice, snapshot.takenAt)
      : 0
    log.info(
      { path, restored, replayed, takenAt: new Date(snapshot.takenAt).toISOString() },
      'counts restored',
    )
  }
  let writing: Promise<void> | undefined
  let failing = false
  const write = () => {
    if (writing !== undefined) return writing
    writing = writeSnapshot(path, takeSnapshot(store))
      .then(
        () => {
          if (failing) log.info({ path }, 'the snapshot is written again')
          failing = false
        },
        (error: unknown) => {
          if (!failing)
            log.error({ err: error, path }, 'the snapshot cannot be written: counts may be lost on restart')
          failing = true
        },
      )
      .finally(() => {
        writing = undefined
      })
    return writing
  }
  // At once: from now on a snapshot says up to when counts are in it, and the ledger the rest.
  await write()
  const timer = setInterval(() => void write(), options.intervalMs)
  timer.unref()
  return {
    async close() {
      clearInterval(timer)
      await writing
      await write()
    },
  }
}

/** Charges the ledger's rows written after `since` again; returns how many. */
async function replayLedger(control: Control, sluice: Sluice, since: number): Promise<number> {
  let replayed = 0
  let cursor: string | undefined
  await control.ledger.flush().catch(() => {})
  for (let page = 0; page < 1000; page++) {
    const rows = await control.usage.rows({ from: since + 1, limit: 1000, ...(cursor && { cursor }) })
    for (const row of rows.items) {
      if (!row.limited || row.subject === null || row.tier === null) continue
      if (!Object.hasOwn(sluice.tiers, row.tier) || (row.tokens === 0 && row.usd === 0)) continue
      const limiter = sluice.tierLimiter(row.tier)
      const units = new Set<string>(limiter.definitions.map((d) => d.unit))
      const zero = Object.fromEntries([...units].map((u) => [u, 0]))
      const charged: Record<string, number> = { requests: 1, tokens: row.tokens, usd: row.usd }
      const actual = Object.fromEntries(Object.entries(charged).filter(([u]) => units.has(u)))
      const reservation = await limiter.reserve(row.subject, zero)
      await reservation.settle({ ...zero, ...actual })
      replayed++
    }
    if (rows.next === null || rows.next === undefined) break
    cursor = rows.next
  }
  return replayed
}
