import {
  enqueue,
  type FairQueueState,
  head,
  leave,
  newFairQueue,
  purge,
  renew,
  serve,
  waitingOf,
} from '../core/fair-queue.js'
import type {
  GateRequest,
  GateResult,
  QueueBackend,
  QueueView,
  TicketRequest,
  TicketResult,
} from './queue-types.js'
import type { StoreOp, StoreResult } from './types.js'

/** What MemoryQueues needs of its store: decide an op at once, on the store's clock. */
export interface SyncDecider {
  executeSync(op: StoreOp): StoreResult
}

/**
 * Fair queues beside a MemoryStore (src/core/fair-queue.ts): a queue's verdict and the op it
 * lets through run in one synchronous step, which is atomic in this process.
 */
export class MemoryQueues implements QueueBackend {
  private readonly queues = new Map<string, FairQueueState>()

  constructor(
    private readonly store: SyncDecider,
    private readonly now: () => number,
  ) {}

  first(op: StoreOp, key: string): GateResult {
    // Nobody waits (the common case): the op alone, without reading the clock.
    if (op.linked === undefined) {
      if (!this.queues.has(key)) return { kind: 'ran', result: this.store.executeSync(op) }
      return this.gateSync(op, { key, ticket: undefined, leaseMs: 0 })
    }
    // A composed op: its levels' queues (their parts' guards) must all be empty too.
    for (const part of op.linked) {
      if (part.guard === undefined || !this.queues.has(part.guard)) continue
      const state = this.live(part.guard, this.now())
      if (state !== undefined) return { kind: 'wait', size: state.tickets.size }
    }
    return this.gateSync(op, { key, ticket: undefined, leaseMs: 0 })
  }

  idle(key?: string): boolean {
    return key === undefined ? this.queues.size === 0 : !this.queues.has(key)
  }

  gate(op: StoreOp, request: GateRequest): Promise<GateResult> {
    try {
      return Promise.resolve(this.gateSync(op, request))
    } catch (error) {
      return Promise.reject(error)
    }
  }

  gateSync(op: StoreOp, request: GateRequest): GateResult {
    const now = this.now()
    const state = this.live(request.key, now)
    const id = request.ticket
    if (id !== undefined) {
      if (state === undefined || !renew(state, id, now, request.leaseMs)) return { kind: 'gone' }
      if (head(state)?.id !== id) return { kind: 'wait', size: state.tickets.size }
    } else if (state !== undefined && state.tickets.size > 0) {
      return { kind: 'wait', size: state.tickets.size }
    }
    const result = this.store.executeSync(op)
    if (id !== undefined && result.allowed && state !== undefined) {
      serve(state, id)
      this.forgetIfEmpty(request.key, state)
    }
    return { kind: 'ran', result }
  }

  enqueue(key: string, request: TicketRequest): Promise<TicketResult> {
    const now = this.now()
    let state = this.live(key, now)
    if (state === undefined) {
      state = newFairQueue()
      this.queues.set(key, state)
    }
    const outcome = enqueue(state, now, request)
    if (!outcome.queued) {
      this.forgetIfEmpty(key, state)
      return Promise.resolve({ queued: false, reason: outcome.reason, size: outcome.size })
    }
    const { ticket } = outcome
    return Promise.resolve({ queued: true, ticket: ticket.id, finish: ticket.finish, size: outcome.size })
  }

  leave(key: string, ticket: string): Promise<number> {
    const state = this.live(key, this.now())
    if (state === undefined) return Promise.resolve(0)
    leave(state, ticket)
    this.forgetIfEmpty(key, state)
    return Promise.resolve(state.tickets.size)
  }

  length(key: string): Promise<number> {
    return Promise.resolve(this.live(key, this.now())?.tickets.size ?? 0)
  }

  keys(prefix: string, limit: number): Promise<string[]> {
    const out: string[] = []
    for (const key of this.queues.keys()) {
      if (out.length >= limit) break
      if (key.startsWith(prefix)) out.push(key)
    }
    return Promise.resolve(out)
  }

  inspect(key: string): Promise<QueueView> {
    const now = this.now()
    const state = this.live(key, now)
    if (state === undefined) return Promise.resolve({ waiting: 0, oldestWaitMs: undefined })
    const { waiting, oldestArrival } = waitingOf(state)
    return Promise.resolve({
      waiting,
      oldestWaitMs: oldestArrival === undefined ? undefined : Math.max(0, now - oldestArrival),
    })
  }

  /** The queue under `key` with its expired tickets dropped (an empty one is forgotten). */
  private live(key: string, now: number): FairQueueState | undefined {
    const state = this.queues.get(key)
    if (state === undefined) return undefined
    purge(state, now)
    if (state.tickets.size === 0) {
      this.queues.delete(key)
      return undefined
    }
    return state
  }

  private forgetIfEmpty(key: string, state: FairQueueState): void {
    if (state.tickets.size === 0) this.queues.delete(key)
  }
}

const attached = new WeakMap<object, MemoryQueues>()

/**
 * The queues of a store that decides synchronously (a MemoryStore), made on first use. `now` is
 * the store's clock (MemoryStore's option), read through its protected field.
 */
export function memoryQueuesOf(store: SyncDecider): MemoryQueues {
  let queues = attached.get(store)
  if (queues === undefined) {
    const clock = (store as unknown as { now?: () => number }).now
    const now = typeof clock === 'function' ? () => clock.call(store) : () => Date.now()
    queues = new MemoryQueues(store, now)
    attached.set(store, queues)
  }
  return queues
}
