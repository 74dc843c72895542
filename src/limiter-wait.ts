import type { Costs, Decision, Limiter } from './limiter.js'
import { Reservation } from './reservation.js'
import type { GateResult, QueueBackend } from './store/queue-types.js'
import type { StoreOp, StoreResult } from './store/types.js'
import {
  type Attempt,
  abortError,
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
  wait: ResolvedWait,
  id: string,
): Decision | Promise<Decision> {
  if (wait.signal?.aborted) return Promise.reject(abortError(wait.signal))
  const backend = limiter.queues()
  const key = limiter.keysFor(subject).queue
  if (limiter.decidesAtOnce && backend.idle?.(key) === true) {
    // Nobody waits and the store decides at once (a MemoryStore): the plain decision, with its
    // reused op and result; only a refusal worth waiting for builds the wait's own op.
    const d = limiter.runNow(mode, subject, costs, id) as Decision
    if (d.allowed || !waitable(d, d.limits) || d.retryAfterMs > wait.maxWaitMs) return d
    const t: Try = { limiter, subject, costs, backend, key, op: limiter.opFor(mode, subject, costs, id) }
    return waitFor(t, wait, { kind: 'decided', decision: d })
  }
  const t: Try = { limiter, subject, costs, backend, key, op: limiter.opFor(mode, subject, costs, id) }
  if (backend.firstResult !== undefined) {
    // No GateResult and one promise step: this is every uncontended call's path on Redis.
    return backend
      .firstResult(t.op, key)
      .then((r) => (r.waiting ? waitFor(t, wait, HELD) : afterRan(t, wait, r)))
  }
  const tried = backend.first(t.op, key)
  if (tried instanceof Promise) return tried.then((g) => afterFirst(t, wait, g))
  return afterFirst(t, wait, tried)
}

const HELD: GateResult = { kind: 'wait', size: -1 }

function afterFirst(t: Try, wait: ResolvedWait, tried: GateResult): Decision | Promise<Decision> {
  return tried.kind === 'ran' ? afterRan(t, wait, tried.result) : waitFor(t, wait, tried)
}

/** The first try ran: its decision, or the wait when it was refused and waiting may help. */
function afterRan(t: Try, wait: ResolvedWait, result: StoreResult): Decision | Promise<Decision> {
  const d = t.limiter.toDecision(t.subject, result, t.costs, true)
  if (d.allowed || !waitable(d, d.limits) || d.retryAfterMs > wait.maxWaitMs) return d
  return waitFor(t, wait, { kind: 'decided', decision: d })
}

function waitFor(
  t: Try,
  wait: ResolvedWait,
  tried: GateResult | { kind: 'decided'; decision: Decision },
): Promise<Decision> {
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
  const wait = resolveWait(options)
  if (wait === undefined) return limiter.consume(subject, costs)
  return decide(limiter, 'consume', subject, limiter.costsFor(costs), wait, id)
}

/** Limiter.reserve with wait options (see WaitOptions). */
export function reserveWaiting(
  limiter: Limiter,
  subject: string,
  estimate: Costs | undefined,
  options: WaitOptions,
  id: string,
): Reservation | Promise<Reservation> {
  const wait = resolveWait(options)
  if (wait === undefined) return limiter.reserve(subject, estimate)
  const costs = limiter.costsFor(estimate)
  const decision = decide(limiter, 'reserve', subject, costs, wait, id)
  if (decision instanceof Promise)
    return decision.then((d) => new Reservation(limiter, subject, id, costs, d))
  return new Reservation(limiter, subject, id, costs, decision)
}
