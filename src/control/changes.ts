import { type Kysely, sql, type Transaction } from 'kysely'
import type { Dialect } from './db.js'
import type { Tables } from './schema.js'

/** What changed: one key, team or end user, or — after a gap the feed cannot fill — everything. */
export type ChangeKind = 'key' | 'team' | 'user'
export type ChangeEvent = { kind: ChangeKind; id: string } | { kind: 'all' }
export type ChangeListener = (event: ChangeEvent) => void

/** The PostgreSQL channel every admin change is notified on. */
export const CHANGE_CHANNEL = 'sluice_changes'

const KINDS: readonly string[] = ['key', 'team', 'user']

/**
 * Every instance hears of every admin change within about a second:
 * PostgreSQL pushes them (LISTEN/NOTIFY), SQLite is polled (the `changes` table's sequence).
 */
export interface ChangeFeed {
  /** Starts the feed on first use. Returns the unsubscribe function. */
  subscribe(listener: ChangeListener): () => void
  /** Resolves once the feed would see a change committed from now on (listening / cursor taken). */
  ready(): Promise<void>
  /** 'up' while changes arrive; 'down' while the feed cannot reach the database. */
  readonly state: 'idle' | 'up' | 'down' | 'closed'
  close(): Promise<void>
}

export interface ChangeFeedEvents {
  /** Called once per transition (for a log line and a gauge), with the error that caused 'down'. */
  onStateChange?: (state: 'up' | 'down', error?: unknown) => void
}

/**
 * Records a change inside the transaction that makes it: a row in `changes` (what SQLite
 * instances poll) and, on PostgreSQL, a NOTIFY delivered when — and only if — the transaction commits.
 */
export async function recordChange(
  trx: Transaction<Tables> | Kysely<Tables>,
  dialect: Dialect,
  kind: ChangeKind,
  id: string,
  now: number,
): Promise<void> {
  await trx.insertInto('changes').values({ time: now, kind, entity_id: id }).execute()
  if (dialect === 'postgres') await sql`select pg_notify(${CHANGE_CHANNEL}, ${`${kind}:${id}`})`.execute(trx)
}

/** `kind:id` as notified, or undefined for anything else. */
export function parseChangePayload(payload: string | undefined): ChangeEvent | undefined {
  if (payload === undefined) return undefined
  const colon = payload.indexOf(':')
  if (colon <= 0) return undefined
  const kind = payload.slice(0, colon)
  const id = payload.slice(colon + 1)
  if (!KINDS.includes(kind) || id === '') return undefined
  return { kind: kind as ChangeKind, id }
}

/** Calls every listener, isolating each one's exceptions from the others and from the feed. */
export class Listeners {
  private readonly set = new Set<ChangeListener>()
  constructor(private readonly onListenerError: (error: unknown) => void) {}

  add(listener: ChangeListener): () => void {
    this.set.add(listener)
    return () => this.set.delete(listener)
  }

  get size(): number {
    return this.set.size
  }

  emit(event: ChangeEvent): void {
    for (const listener of this.set) {
      try {
        listener(event)
      } catch (error) {
        this.onListenerError(error)
      }
    }
  }
}

/** Deletes change rows older than `before` (feeds only need the last moments), in bounded chunks. */
export async function pruneChanges(db: Kysely<Tables>, before: number, chunk = 5000): Promise<number> {
  let total = 0
  for (;;) {
    const result = await db
      .deleteFrom('changes')
      .where(
        'seq',
        'in',
        db.selectFrom('changes').select('seq').where('time', '<', before).orderBy('seq').limit(chunk),
      )
      .executeTakeFirst()
    const n = Number(result.numDeletedRows)
    total += n
    if (n < chunk) return total
  }
}
