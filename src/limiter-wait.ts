import type { Costs, Decision, Limiter } from './limiter.js'
import { Reservation } from './reservation.js'
import type { GateResult, QueueBackend } from './store/queue-types.js'
import type { StoreOp, StoreResult } from './store/types.js'
import {
  type Attempt,
  abortError,
  checkWait,
  decideWaiting,
  type ResolvedWait,
  resolveWait,
  type WaitOptions,
  waitable,
  withWait,
} from './waiting.js'

interface Try {
  limiter: Limiter
  subject: string
  costs: number[]
  backend: QueueBackend
  key: string
  op: StoreOp
  /** The caller's wait options (checked), resolved only when the request waits. */
  options: WaitOptions
  maxWaitMs: number
}

/** A Limiter's decision as one attempt of a wait (waiting.ts): the queue is the subject's own. */
function attemptOf({ limiter, subject, costs, backend, key, op }: Try): Attempt<Decision> {
  return {
    backend,
    key,
    flow: subject,
    op,
    peek: () =>
      limiter.store
        .execute(limiter.opFor('peek', subject, costs, op.id))
        .then((r) => limiter.toDecision(subject, r, costs, false)),
    read: (r) => limiter.toDecision(subject, r, costs, true),
    canWait: (d) => waitable(d, d.limits),
    allowed: (d) => d.allowed,
    retryAfterMs: (d) => d.retryAfterMs,
    refusal: (d) => ({ ...d, allowed: false, retryAfterMs: 1, deniedBy: 'queue' }),
  }
}

/**
 * The first try decides alone when nobody waits and it passes (or waiting cannot help): at once
 * with a MemoryStore, in the same batch as every other op with a RedisStore. Otherwise the wait.
 */
function decide(
  limiter: Limiter,
  mode: 'consume' | 'reserve',
  subject: string,
  costs: number[],
  options: WaitOptions,
  maxWaitMs: number,
  id: string,
): Decision | Promise<Decision> {
  const signal = options.signal
  if (signal?.aborted) return Promise.reject(abortError(signal))
  const backend = limiter.queues()
  // No queue of the store holds anyone (checked first: no key to look up) or not this one.
  const idle = backend.idle
  if (
    limiter.decidesAtOnce &&
    idle !== undefined &&
    (idle.call(backend) || idle.call(backend, limiter.keysFor(subject).queue))
  ) {
    // Nobody waits and the store decides at once (a MemoryStore): the plain decision, with its
    // reused op and result; only a refusal worth waiting for builds the wait's own op.
    const d = limiter.runNow(mode, subject, costs, id) as Decision
    if (answersNow(d, maxWaitMs)) return d
    const t = tryOf(limiter, mode, subject, costs, id, backend, options, maxWaitMs)
    return waitFor(t, { kind: 'decided', decision: d })
  }
  const t = tryOf(limiter, mode, subject, costs, id, backend, options, maxWaitMs)
  if (backend.firstResult !== undefined) {
    // No GateResult and one promise step: this is every uncontended call's path on Redis.
    return backend.firstResult(t.op, t.key).then((r) => (r.waiting ? waitFor(t, HELD) : afterRan(t, r)))
  }
  const tried = backend.first(t.op, t.key)
  if (tried instanceof Promise) return tried.then((g) => afterFirst(t, g))
  return afterFirst(t, tried)
}

/** The request's own op and queue, for a first try that may wait. */
function tryOf(
  limiter: Limiter,
  mode: 'consume' | 'reserve',
  subject: string,
  costs: number[],
  id: string,
  backend: QueueBackend,
  options: WaitOptions,
  maxWaitMs: number,
): Try {
  const key = limiter.keysFor(subject).queue
  return {
    limiter,
    subject,
    costs,
    backend,
    key,
    op: limiter.opFor(mode, subject, costs, id),
    options,
    maxWaitMs,
  }
}

/** The first try's decision is the answer: it passed, or waiting cannot help or takes too long. */
function answersNow(d: Decision, maxWaitMs: number): boolean {
  return d.allowed || !waitable(d, d.limits) || d.retryAfterMs > maxWaitMs
}

const HELD: GateResult = { kind: 'wait', size: -1 }

function afterFirst(t: Try, tried: GateResult): Decision | Promise<Decision> {
  return tried.kind === 'ran' ? afterRan(t, tried.result) : waitFor(t, tried)
}

/** The first try ran: its decision, or the wait when it was refused and waiting may help. */
function afterRan(t: Try, result: StoreResult): Decision | Promise<Decision> {
  const d = t.limiter.toDecision(t.subject, result, t.costs, true)
  if (answersNow(d, t.maxWaitMs)) return d
  return waitFor(t, { kind: 'decided', decision: d })
}

/** The wait itself, its options resolved only now: an uncontended call never builds them. */
function waitFor(t: Try, tried: GateResult | { kind: 'decided'; decision: Decision }): Promise<Decision> {
  const wait = resolveWait(t.options) as ResolvedWait
  return decideWaiting(attemptOf(t), wait, tried).then(withWait)
}

/** Limiter.consume with wait options (see WaitOptions). */
export function consumeWaiting(
  limiter: Limiter,
  subject: string,
  costs: Costs | undefined,
  options: WaitOptions,
  id: string,
): Decision | Promise<Decision> {
  const maxWaitMs = checkWait(options)
  if (maxWaitMs === undefined) return limiter.consume(subject, costs)
  return decide(limiter, 'consume', subject, limiter.costsFor(costs), options, maxWaitMs, id)
}

/** Limiter.reserve with wait options (see WaitOptions). */
export function reserveWaiting(
  limiter: Limiter,
  subject: string,
  estimate: Costs | undefined,
  options: WaitOptions,
  id: string,
): Reservation | Promise<Reservation> {
  const maxWaitMs = checkWait(options)
  if (maxWaitMs === undefined) return limiter.reserve(subject, estimate)
  const costs = limiter.costsFor(estimate)
  const decision = decide(limiter, 'reserve', subject, costs, options, maxWaitMs, id)
  if (decision instanceof Promise)
    return decision.then((d) => new Reservation(limiter, subject, id, costs, d))
  return new Reservation(limiter, subject, id, costs, decision)
}
