import type { StoreOp, StoreResult } from './types.js'

/**
 * What a store offers for fair queueing (docs/queueing.md): one queue per capacity, named by a
 * key in the capacity's hash tag, its order kept where the capacity's counts are kept.
 */

/** An op that may run only when it is the request's turn. */
export interface GateRequest {
  /** The queue's key. */
  key: string
  /** The request's ticket, or undefined for a request that holds none (it runs only when nobody waits). */
  ticket: string | undefined
  /** A held ticket's lease is renewed for this long. */
  leaseMs: number
}

/**
 * ran: it was the request's turn and the op ran (a held ticket leaves the queue when admitted);
 * wait: somebody else's turn (size: tickets waiting); gone: the ticket's lease ran out.
 */
export type GateResult =
  | { kind: 'ran'; result: StoreResult }
  | { kind: 'wait'; size: number }
  | { kind: 'gone' }

export interface TicketRequest {
  /** The waiter's unique id. */
  waiter: string
  /** Whom the ticket counts for (a tenant): fairness is among flows. */
  flow: string
  weight: number
  leaseMs: number
  maxPerFlow: number
  maxTotal: number
}

export type TicketResult =
  | { queued: true; ticket: string; finish: number; size: number }
  | { queued: false; reason: 'flow-full' | 'queue-full'; size: number }

export interface QueueBackend {
  /**
   * A request's first try, holding no ticket: runs `op` unless somebody waits in the queue
   * `key`, in one atomic step (at once where the store decides synchronously). May set the op's
   * `guard`: pass an op made for this request.
   */
  first(op: StoreOp, key: string): GateResult | Promise<GateResult>
  /**
   * True when nobody waits in the queue `key` (no key: in any queue of this store), known at once
   * (queues kept in this process only): the caller may then decide as without a queue.
   */
  idle?(key?: string): boolean
  /**
   * first() as the op's own result, `waiting` set when it was not decided because others wait:
   * one promise step less per uncontended call (stores that decide in another process).
   */
  firstResult?(op: StoreOp, key: string): Promise<StoreResult>
  /** Runs `op` if it is the request's turn, in one atomic step with that verdict. */
  gate(op: StoreOp, request: GateRequest): Promise<GateResult>
  enqueue(key: string, request: TicketRequest): Promise<TicketResult>
  /** Gives a ticket back (its waiter stops waiting); resolves to the tickets left. */
  leave(key: string, ticket: string): Promise<number>
  /** Tickets waiting in a queue. */
  length(key: string): Promise<number>
  /**
   * The names of the queues that may hold tickets, starting with `prefix`, at most `limit` (the
   * admin API's view): every instance's where the store is shared (Redis: a SCAN of every master).
   */
  keys?(prefix: string, limit: number): Promise<string[]>
  /** Tickets waiting in a queue now, and how long the oldest has waited (the store's clock). */
  inspect?(key: string): Promise<QueueView>
}

export interface QueueView {
  waiting: number
  /** How long the oldest ticket has waited, ms; undefined when none waits. */
  oldestWaitMs: number | undefined
}

/** A store that keeps queues (RedisStore, MemoryStore through memory-queue.ts, GuardedStore's primary). */
export interface QueueingStore {
  readonly queues: QueueBackend
}
