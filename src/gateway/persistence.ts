/**
 * Nothing forgotten on restart with the embedded default (memory store): its counts go to a
 * snapshot file on shutdown and every `snapshot.interval` (1 s) while serving, and come back
 * before the gateway listens. Charges settled after the snapshot was taken (the last second
 * before a `kill -9`) are charged again from the database's ledger rows (replay.ts), on every
 * level they were decided on (key, team, end user), so dollar and token budgets are whole after
 * any restart; a call in flight at the snapshot is then counted with both its estimate and its
 * cost (never less than it spent).
 */
import type { Logger } from 'pino'
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
  /** Charges the ledger's rows written after `since` again (replay.ts); returns how many. */
  replay: ((since: number) => Promise<number>) | undefined
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
    let replayed = 0
    try {
      replayed = (await options.replay?.(snapshot.takenAt)) ?? 0
    } catch (error) {
      log.error({ err: error, path }, 'the ledger rows after the snapshot cannot be charged again')
    }
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
