import { SluiceInputError } from '../core/errors.js'
import { memoryQueuesOf } from './memory-queue.js'
import type { GateResult, QueueBackend, QueueingStore } from './queue-types.js'
import type { Store, StoreOp, StoreResult } from './types.js'

/** The queues of a store (docs/queueing.md), or a clear error for a store that keeps none. */
export function queuesOf(store: Store): QueueBackend {
  const queues = (store as Partial<QueueingStore>).queues
  if (queues !== undefined) return queues
  const sync = store as Partial<{ executeSync(op: StoreOp): StoreResult }>
  if (typeof sync.executeSync === 'function') return memoryQueuesOf(store as never)
  throw new SluiceInputError(
    'maxWaitMs needs a store that keeps queues (MemoryStore, RedisStore, or a GuardedStore around one)',
  )
}

/** A guarded first try's result as a gate's: not decided when others wait. */
export function firstGate(result: StoreResult): GateResult {
  return result.waiting ? { kind: 'wait', size: -1 } : { kind: 'ran', result }
}

/**
 * The queues of a guarded store's primary, with the first try sent through the guard (its
 * deadline and outage policy): a decision the outage policy made is unverified, and never waits.
 */
export function guardedQueues(guarded: Store, primary: Store): QueueBackend {
  const inner = queuesOf(primary)
  // A store deciding in this process has no outage to guard against, and decides its own queues.
  if (typeof (primary as Partial<{ executeSync: unknown }>).executeSync === 'function') return inner
  const firstResult = (op: StoreOp, key: string): Promise<StoreResult> => {
    op.guard = key
    return guarded.execute(op)
  }
  return {
    first: (op, key) => firstResult(op, key).then(firstGate),
    firstResult,
    gate: (op, request) => inner.gate(op.guard === undefined ? op : { ...op, guard: undefined }, request),
    enqueue: (key, request) => inner.enqueue(key, request),
    leave: (key, ticket) => inner.leave(key, ticket),
    length: (key) => inner.length(key),
    ...(inner.keys !== undefined && { keys: inner.keys.bind(inner) }),
    ...(inner.inspect !== undefined && { inspect: inner.inspect.bind(inner) }),
  }
}
