/**
 * The admin API's view of queues (docs/queueing.md): per tier, the requests waiting now and how
 * long the oldest has waited — read from the store, so with Redis it is every instance's — and
 * the waits this process saw end over a recent window (QueueWaits).
 */
import { queuesOf } from '../store/queues.js'
import type { Store, StoreOp, StoreResult } from '../store/types.js'
import type { ResolvedTier } from './policies.js'
import { QUEUE_WINDOW_MS, type QueueWaits, type RecentWaits } from './queue-waits.js'

/** Queues read per tier at most: a view, not an export. */
export const QUEUES_LISTED_MAX = 1000

export interface CapacityQueue {
  /** The subject whose capacity it is, as in its keys (`key:ab12…`, or `h-…` for a hashed one). */
  subject: string
  waiting: number
  oldestWaitMs: number | null
}

export interface TierQueues {
  tier: string
  /** The tier's queue settings (keys may carry their own); null when its requests do not wait. */
  queue: {
    maxWaitMs: number
    maxQueued: number | null
    maxQueuedPerSubject: number | null
    weight: number | null
  } | null
  /** Waiting now on every capacity of the tier, and the longest wait among them. */
  waiting: number
  oldestWaitMs: number | null
  /** The capacities somebody waits on, longest wait first. */
  capacities: CapacityQueue[]
  /** Waits that ended in this process over the window. */
  recent: RecentWaits
}

export interface QueuesReport {
  /** True when the store is shared (Redis): waiting and oldestWaitMs are every instance's. */
  shared: boolean
  windowSeconds: number
  tiers: TierQueues[]
}

function isProcessLocal(store: Store): boolean {
  return typeof (store as Partial<{ executeSync(op: StoreOp): StoreResult }>).executeSync === 'function'
}

/** The start of every queue key of a tier's limiter: `<prefix>{<tier>:`. */
function tierPrefix(t: ResolvedTier): string {
  return `${t.limiter.prefix}{${t.limiter.policy}:`
}

async function tierQueues(t: ResolvedTier, waits: QueueWaits): Promise<TierQueues> {
  const backend = queuesOf(t.limiter.store)
  const prefix = tierPrefix(t)
  const keys = backend.keys === undefined ? [] : await backend.keys(prefix, QUEUES_LISTED_MAX)
  const capacities: CapacityQueue[] = []
  for (const key of keys) {
    const view = await backend.inspect!(key)
    if (view.waiting === 0) continue
    capacities.push({
      subject: key.slice(prefix.length, key.length - '}!queue'.length),
      waiting: view.waiting,
      oldestWaitMs: view.oldestWaitMs ?? null,
    })
  }
  capacities.sort((a, b) => (b.oldestWaitMs ?? 0) - (a.oldestWaitMs ?? 0))
  const q = t.queue
  return {
    tier: t.name,
    queue:
      q === undefined
        ? null
        : {
            maxWaitMs: q.maxWaitMs ?? 0,
            maxQueued: q.maxQueued ?? null,
            maxQueuedPerSubject: q.maxQueuedPerFlow ?? null,
            weight: q.weight ?? null,
          },
    waiting: capacities.reduce((n, c) => n + c.waiting, 0),
    oldestWaitMs: capacities[0]?.oldestWaitMs ?? null,
    capacities,
    recent: waits.recent(t.name),
  }
}

/** Every tier's queues now. */
export async function queuesReport(
  tiers: Iterable<ResolvedTier>,
  store: Store,
  waits: QueueWaits,
): Promise<QueuesReport> {
  const out: TierQueues[] = []
  for (const t of tiers) out.push(await tierQueues(t, waits))
  return { shared: !isProcessLocal(store), windowSeconds: QUEUE_WINDOW_MS / 1000, tiers: out }
}
