import { randomBytes } from 'node:crypto'
import { describe, SluiceInputError } from './core/errors.js'
import type { LimitStatus } from './limiter.js'
import type { GateResult, QueueBackend, TicketRequest, TicketResult } from './store/queue-types.js'

export { queuesOf } from './store/queues.js'

import type { StoreOp, StoreResult } from './store/types.js'
import { LocalLines, type LocalWaiter } from './waiting-local.js'

/**
 * Waiting in fair order instead of a refusal (docs/queueing.md). A request refused by a rate
 * limit whose retry time is within `maxWaitMs` takes a ticket in the capacity's queue and is
 * admitted as soon as it is its turn and it fits; past `maxWaitMs` it gets the refusal it would
 * have had. Nothing is held while waiting: the capacity is charged only when the request passes.
 */
export interface WaitOptions {
  /** Longest wait in ms (0 or absent: answer at once, as without a queue). */
  maxWaitMs?: number
  /** Cancels the wait: the call then rejects with the signal's reason and its ticket is given back. */
  signal?: AbortSignal
  /** Whom the wait counts for in the fair order (default: the subject, or the queue level's subject). */
  flow?: string
  /** The flow's weight in the fair order (default 1): weight 2 is served twice as often as weight 1. */
  weight?: number
  /** Lease of a waiting ticket in ms (default 3000), renewed while the waiter lives. */
  leaseMs?: number
  /** Most waiting requests of one flow on this capacity (default 100); beyond it, the refusal at once. */
  maxQueuedPerFlow?: number
  /** Most waiting requests on this capacity (default 1000); beyond it, the refusal at once. */
  maxQueued?: number
  /** How often the first waiter of this process polls while another instance's waiter is ahead (default 10 ms). */
  pollMs?: number
  /** Told true when the request takes a ticket, false when it leaves the queue (for metrics). */
  onQueue?: (waiting: boolean) => void
  /**
   * The request's place among waiters (default "normal"): "high" waits in a flow of its own with
   * 4 times the weight (ahead of its flow's normal requests, a bounded share, see PRIORITY);
   * "low" stays in its flow with a quarter of the weight.
   */
  priority?: Priority
}

export type Priority = 'high' | 'normal' | 'low'
export const PRIORITIES: readonly Priority[] = ['high', 'normal', 'low']

/**
 * How a priority changes a ticket (docs/queueing.md): a weight multiplier, and a flow of its own
 * for "high" so that it overtakes its own flow's backlog. Weighted fair order still holds: a high
 * flow gets at most 4 times a normal flow's share while others wait, never all of it.
 */
const PRIORITY: Record<Priority, { factor: number; suffix: string }> = {
  high: { factor: 4, suffix: '!high' },
  normal: { factor: 1, suffix: '' },
  low: { factor: 0.25, suffix: '' },
}

export interface ResolvedWait {
  maxWaitMs: number
  signal: AbortSignal | undefined
  flow: string | undefined
  weight: number
  leaseMs: number
  maxQueuedPerFlow: number
  maxQueued: number
  pollMs: number
  onQueue: ((waiting: boolean) => void) | undefined
  priority: Priority
}

const positive = (value: unknown, name: string, fallback: number, integer = false): number => {
  if (value === undefined) return fallback
  if (
    typeof value !== 'number' ||
    !Number.isFinite(value) ||
    value <= 0 ||
    (integer && !Number.isInteger(value))
  ) {
    throw new SluiceInputError(
      `${name} must be a positive ${integer ? 'integer' : 'number'}, got ${describe(value)}`,
    )
  }
  return value
}

/**
 * Checks wait options, building nothing (every queued call's path): the longest wait in ms, or
 * undefined when the call does not wait. Throws SluiceInputError naming a bad option.
 */
export function checkWait(options: WaitOptions | undefined): number | undefined {
  if (options === undefined) return undefined
  if (typeof options !== 'object' || options === null) {
    throw new SluiceInputError(
      `wait options must be an object such as { maxWaitMs: 2000 }, got ${describe(options)}`,
    )
  }
  const max = options.maxWaitMs
  if (max !== undefined && (typeof max !== 'number' || !(max >= 0) || !Number.isFinite(max))) {
    throw new SluiceInputError(`maxWaitMs must be a finite number of milliseconds >= 0, got ${describe(max)}`)
  }
  const signal = options.signal
  if (signal !== undefined && (typeof signal !== 'object' || typeof signal?.aborted !== 'boolean')) {
    throw new SluiceInputError(`signal must be an AbortSignal, got ${describe(signal)}`)
  }
  if (options.flow !== undefined && (typeof options.flow !== 'string' || options.flow === '')) {
    throw new SluiceInputError(`flow must be a non-empty string, got ${describe(options.flow)}`)
  }
  positive(options.weight, 'weight', 1)
  positive(options.leaseMs, 'leaseMs', 3000, true)
  positive(options.maxQueuedPerFlow, 'maxQueuedPerFlow', 100, true)
  positive(options.maxQueued, 'maxQueued', 1000, true)
  positive(options.pollMs, 'pollMs', 10, true)
  const priority = options.priority
  if (priority !== undefined && priority !== 'high' && priority !== 'normal' && priority !== 'low') {
    throw new SluiceInputError(`priority must be "high", "normal" or "low", got ${describe(priority)}`)
  }
  if (options.onQueue !== undefined && typeof options.onQueue !== 'function') {
    throw new SluiceInputError(`onQueue must be a function, got ${describe(options.onQueue)}`)
  }
  const maxWaitMs = max ?? 0
  return maxWaitMs === 0 && signal === undefined ? undefined : maxWaitMs
}

/** The wait options checked, with their defaults, or undefined when the call does not wait. */
export function resolveWait(options: WaitOptions | undefined): ResolvedWait | undefined {
  const maxWaitMs = checkWait(options)
  if (maxWaitMs === undefined) return undefined
  const o = options as WaitOptions
  return {
    maxWaitMs,
    signal: o.signal,
    flow: o.flow,
    weight: positive(o.weight, 'weight', 1),
    leaseMs: positive(o.leaseMs, 'leaseMs', 3000, true),
    maxQueuedPerFlow: positive(o.maxQueuedPerFlow, 'maxQueuedPerFlow', 100, true),
    maxQueued: positive(o.maxQueued, 'maxQueued', 1000, true),
    pollMs: positive(o.pollMs, 'pollMs', 10, true),
    onQueue: o.onQueue,
    priority: o.priority ?? 'normal',
  }
}

/** A refusal waiting can help: a rate limit (not a budget, a block, or a cost that never fits). */
export function waitable(
  d: { allowed: boolean; blocked: boolean; verified: boolean; retryAfterMs: number },
  limits: readonly LimitStatus[],
): boolean {
  if (d.allowed || d.blocked || !d.verified || !Number.isFinite(d.retryAfterMs)) return false
  return limits.every((l) => l.allowed || l.kind !== 'calendar')
}

/** How one decision is made, tried again and read, for a Limiter or a compose(). */
export interface Attempt<D> {
  backend: QueueBackend
  /** The queue's key (in the capacity's hash tag). */
  key: string
  /** The flow when the options name none. */
  flow: string
  /** The op to run on the request's turn (the same every time: a denied op writes nothing). */
  op: StoreOp
  /** What the op would decide, charging nothing (for a request that may not try yet). */
  peek(): Promise<D>
  read(result: StoreResult): D
  /** A refusal that may wait (see waitable). */
  canWait(d: D): boolean
  allowed(d: D): boolean
  retryAfterMs(d: D): number
  /** A refusal made of a decision that would pass, for a request that never got its turn. */
  refusal(d: D): D
  /**
   * Where to wait, for an attempt over several capacities (compose()): given the refusal (or,
   * `passes`, a decision that would pass but others wait), the queue of the capacity to wait on
   * and the refusal to hold meanwhile; no key: answer that refusal at once. Absent: `key`.
   */
  choose?(d: D, passes: boolean): Promise<{ key: string | undefined; refusal: D }>
}

export interface Waited<D> {
  decision: D
  /** Milliseconds spent waiting in the queue (0 when the first attempt decided). */
  waitedMs: number
  /** The request held a ticket. */
  queued: boolean
}

/** The decision, saying how long it waited (whole ms) when it held a ticket. */
export function withWait<D extends { waitedMs?: number }>(waited: Waited<D>): D {
  return waited.queued ? { ...waited.decision, waitedMs: Math.round(waited.waitedMs) } : waited.decision
}

const WAITER_TAG = randomBytes(6).toString('base64url')
let waiterCount = 0
const lines = new LocalLines()

export function abortError(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('The wait was aborted', 'AbortError')
}

/**
 * Decides `attempt` waiting in fair order as `wait` allows. Rejects when the signal aborts, or
 * with the store's error (the ticket is then given back where the store still answers).
 */
export async function decideWaiting<D>(
  attempt: Attempt<D>,
  wait: ResolvedWait,
  tried?: GateResult | { kind: 'decided'; decision: D },
): Promise<Waited<D>> {
  const { backend } = attempt
  if (wait.signal?.aborted) throw abortError(wait.signal)
  const started = performance.now()
  const deadline = started + wait.maxWaitMs
  const first = tried ?? (await backend.first(attempt.op, attempt.key))
  let last: D
  let delay: number
  let passes = false
  if (first.kind === 'ran' || first.kind === 'decided') {
    last = first.kind === 'ran' ? attempt.read(first.result) : first.decision
    if (attempt.allowed(last) || !attempt.canWait(last) || attempt.retryAfterMs(last) > wait.maxWaitMs) {
      return { decision: last, waitedMs: 0, queued: false }
    }
    delay = attempt.retryAfterMs(last)
  } else {
    // Others wait on this capacity: never pass them. Would waiting help at all?
    const peeked = await attempt.peek()
    if (
      !attempt.allowed(peeked) &&
      (!attempt.canWait(peeked) || attempt.retryAfterMs(peeked) > wait.maxWaitMs)
    ) {
      return { decision: peeked, waitedMs: 0, queued: false }
    }
    passes = attempt.allowed(peeked)
    last = peeked
    delay = passes ? wait.pollMs : attempt.retryAfterMs(peeked)
  }
  let key = attempt.key
  if (attempt.choose !== undefined) {
    const chosen = await attempt.choose(last, passes)
    if (chosen.key === undefined) return { decision: chosen.refusal, waitedMs: 0, queued: false }
    key = chosen.key
    last = chosen.refusal
  } else if (passes) {
    last = attempt.refusal(last)
  }
  waiterCount = (waiterCount + 1) % Number.MAX_SAFE_INTEGER
  const priority = PRIORITY[wait.priority]
  const request = {
    waiter: `${WAITER_TAG}.${waiterCount.toString(36)}`,
    flow: (wait.flow ?? attempt.flow) + priority.suffix,
    weight: wait.weight * priority.factor,
    leaseMs: wait.leaseMs,
    maxPerFlow: wait.maxQueuedPerFlow,
    maxTotal: wait.maxQueued,
  }
  const ticket = await backend.enqueue(key, request)
  if (!ticket.queued) return { decision: last, waitedMs: 0, queued: false }
  const me: LocalWaiter = lines.join(backend, key, ticket.ticket, ticket.finish)
  wait.onQueue?.(true)
  try {
    return await waitTurn({ ...attempt, key }, wait, request, me, last, delay, started, deadline)
  } finally {
    wait.onQueue?.(false)
  }
}

async function waitTurn<D>(
  attempt: Attempt<D>,
  wait: ResolvedWait,
  request: TicketRequest,
  first: LocalWaiter,
  refusal: D,
  firstDelay: number,
  started: number,
  deadline: number,
): Promise<Waited<D>> {
  const { backend, key } = attempt
  let me = first
  let last = refusal
  let delay = firstDelay
  let ticket: TicketResult
  const renewEvery = Math.max(1, Math.floor(wait.leaseMs / 3))
  try {
    for (;;) {
      const left = deadline - performance.now()
      if (left <= 0) break
      // Every waiter, the head too, tries again within a third of its lease: each try renews it.
      await me.sleep(Math.min(me.isFirst() ? Math.min(delay, renewEvery) : renewEvery, left), wait.signal)
      if (wait.signal?.aborted) throw abortError(wait.signal)
      if (performance.now() >= deadline) break
      const r = await backend.gate(attempt.op, { key, ticket: me.ticket, leaseMs: wait.leaseMs })
      if (r.kind === 'wait') {
        delay = wait.pollMs
        continue
      }
      if (r.kind === 'gone') {
        // The lease ran out (this process stalled longer than a lease): queue again, at the back.
        me.leave()
        ticket = await backend.enqueue(key, request)
        if (!ticket.queued) return { decision: last, waitedMs: performance.now() - started, queued: true }
        me = lines.join(backend, key, ticket.ticket, ticket.finish)
        delay = wait.pollMs
        continue
      }
      const d = attempt.read(r.result)
      if (attempt.allowed(d)) {
        me.leave()
        return { decision: d, waitedMs: performance.now() - started, queued: true }
      }
      last = d
      if (!attempt.canWait(d)) break
      delay = Math.max(1, attempt.retryAfterMs(d))
    }
    await giveBack(backend, key, me)
    return { decision: last, waitedMs: performance.now() - started, queued: true }
  } catch (error) {
    await giveBack(backend, key, me)
    throw error
  }
}

/** Leaves the local line and gives the ticket back; a store that cannot answer lets the lease lapse. */
async function giveBack(backend: QueueBackend, key: string, me: LocalWaiter): Promise<void> {
  if (me.left) return
  me.leave()
  try {
    await backend.leave(key, me.ticket)
  } catch {
    // The ticket's lease runs out instead: others wait at most that long for it.
  }
}
