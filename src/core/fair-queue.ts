/**
 * Weighted fair order among requests waiting on one capacity (start-time fair queueing with
 * virtual finish times). Pure: the clock is passed in. The memory store keeps this state per
 * queue; src/store/redis/lua/queue.lua is the same logic over Redis keys.
 *
 * Each waiting request holds a ticket: a lease with an expiry that its waiter renews on every
 * attempt, so a waiter that died (its process, its client) drops out once the lease runs out.
 * A ticket of flow f (a tenant) with weight w gets
 *   start  = max(virtual time, f's last finish tag)
 *   finish = start + 1 / w
 * and the queue serves tickets by finish tag (then by arrival). The virtual time moves to the
 * start tag of each ticket served. A flow with many waiters therefore gets tags far ahead of the
 * virtual time, and a flow that sends one call now and then gets one near it: it waits behind at
 * most about one ticket of each other flow, whatever their number of waiters.
 */

export interface Ticket {
  id: string
  flow: string
  start: number
  finish: number
  /** Arrival order (breaks ties of finish tags). */
  seq: number
  /** Lease expiry (ms since the epoch, the store's clock). */
  expiresAt: number
  /** When it was taken (the store's clock): how long its waiter has waited. */
  arrivedAt: number
}

export interface FairQueueState {
  /** Virtual time: the start tag of the last ticket served. */
  vtime: number
  seq: number
  tickets: Map<string, Ticket>
  /** Per flow: its last finish tag and how many tickets it holds. */
  flows: Map<string, { last: number; count: number }>
}

export interface EnqueueParams {
  /** The waiter's unique id (the ticket's id ends with it). */
  waiter: string
  flow: string
  /** > 0; a flow of weight 2 is served twice as often as one of weight 1 when both wait. */
  weight: number
  leaseMs: number
  /** Most tickets one flow may hold in this queue. */
  maxPerFlow: number
  /** Most tickets in this queue. */
  maxTotal: number
}

export type EnqueueOutcome =
  | { queued: true; ticket: Ticket; size: number }
  | { queued: false; reason: 'flow-full' | 'queue-full'; size: number }

export function newFairQueue(): FairQueueState {
  return { vtime: 0, seq: 0, tickets: new Map(), flows: new Map() }
}

/**
 * A ticket's id: its arrival number zero-padded (so that ids sort in arrival order, as a Redis
 * sorted set orders members of equal score), then the waiter's own unique id (so that a waiter
 * whose ticket expired can never take a later ticket for its own).
 */
export function ticketId(seq: number, waiter: string): string {
  return `${seq.toString().padStart(12, '0')}:${waiter}`
}

function drop(state: FairQueueState, ticket: Ticket): void {
  state.tickets.delete(ticket.id)
  const flow = state.flows.get(ticket.flow)
  if (flow === undefined) return
  flow.count -= 1
  // A flow with nothing waiting keeps its tag only while it is ahead of the virtual time.
  if (flow.count <= 0 && flow.last <= state.vtime) state.flows.delete(ticket.flow)
  // Nobody waits: nothing to be fair about, the queue starts afresh.
  if (state.tickets.size === 0) {
    state.vtime = 0
    state.seq = 0
    state.flows.clear()
  }
}

/** Drops the tickets whose lease ran out. */
export function purge(state: FairQueueState, now: number): void {
  for (const ticket of state.tickets.values()) if (ticket.expiresAt <= now) drop(state, ticket)
}

function before(a: Ticket, b: Ticket): boolean {
  return a.finish < b.finish || (a.finish === b.finish && a.seq < b.seq)
}

/** The ticket served next (live tickets only: purge first), or undefined when none waits. */
export function head(state: FairQueueState): Ticket | undefined {
  let best: Ticket | undefined
  for (const ticket of state.tickets.values()) if (best === undefined || before(ticket, best)) best = ticket
  return best
}

/** Adds a ticket, or says which bound stops it. */
export function enqueue(state: FairQueueState, now: number, p: EnqueueParams): EnqueueOutcome {
  const flow = state.flows.get(p.flow)
  if (state.tickets.size >= p.maxTotal)
    return { queued: false, reason: 'queue-full', size: state.tickets.size }
  if ((flow?.count ?? 0) >= p.maxPerFlow) {
    return { queued: false, reason: 'flow-full', size: state.tickets.size }
  }
  state.seq += 1
  const start = Math.max(state.vtime, flow?.last ?? 0)
  const ticket: Ticket = {
    id: ticketId(state.seq, p.waiter),
    flow: p.flow,
    start,
    finish: start + 1 / p.weight,
    seq: state.seq,
    expiresAt: now + p.leaseMs,
    arrivedAt: now,
  }
  state.tickets.set(ticket.id, ticket)
  if (flow === undefined) state.flows.set(p.flow, { last: ticket.finish, count: 1 })
  else {
    flow.last = ticket.finish
    flow.count += 1
  }
  return { queued: true, ticket, size: state.tickets.size }
}

/** Extends a ticket's lease; false when it is gone (expired or served). */
export function renew(state: FairQueueState, id: string, now: number, leaseMs: number): boolean {
  const ticket = state.tickets.get(id)
  if (ticket === undefined || ticket.expiresAt <= now) return false
  ticket.expiresAt = now + leaseMs
  return true
}

/** The ticket was served: it leaves and the virtual time moves to its start tag. */
export function serve(state: FairQueueState, id: string): void {
  const ticket = state.tickets.get(id)
  if (ticket === undefined) return
  if (ticket.start > state.vtime) state.vtime = ticket.start
  drop(state, ticket)
}

/** The ticket's waiter gave up (deadline, abort, a refusal waiting cannot help). */
export function leave(state: FairQueueState, id: string): void {
  const ticket = state.tickets.get(id)
  if (ticket !== undefined) drop(state, ticket)
}

/** Tickets waiting (live ones only: purge first) and the arrival of the oldest (undefined when none). */
export function waitingOf(state: FairQueueState): { waiting: number; oldestArrival: number | undefined } {
  let oldest: number | undefined
  for (const ticket of state.tickets.values()) {
    if (oldest === undefined || ticket.arrivedAt < oldest) oldest = ticket.arrivedAt
  }
  return { waiting: state.tickets.size, oldestArrival: oldest }
}

/** When the queue's state can be forgotten: the latest lease expiry (or now when empty). */
export function expiresAt(state: FairQueueState, now: number): number {
  let last = now
  for (const ticket of state.tickets.values()) if (ticket.expiresAt > last) last = ticket.expiresAt
  return last
}
