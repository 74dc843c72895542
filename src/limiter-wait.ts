import type { Costs, Decision, Limiter } from './limiter.js'
import { Reservation } from './reservation.js'
import { type Attempt, decideWaiting, queuesOf, resolveWait, type WaitOptions, waitable } from './waiting.js'

/** A Limiter's decision as one attempt of a wait (waiting.ts): the queue is the subject's own. */
function attemptOf(
  limiter: Limiter,
  mode: 'consume' | 'reserve',
  subject: string,
  costs: number[],
  id: string,
): Attempt<Decision> {
  const keys = limiter.keysFor(subject)
  return {
    backend: queuesOf(limiter.store),
    key: keys.queue,
    flow: subject,
    op: limiter.opFor(mode, subject, costs, id),
    peek: () =>
      limiter.store
        .execute(limiter.opFor('peek', subject, costs, id))
        .then((r) => limiter.toDecision(subject, r, costs, false)),
    read: (r) => limiter.toDecision(subject, r, costs, true),
    canWait: (d) => waitable(d, d.limits),
    allowed: (d) => d.allowed,
    retryAfterMs: (d) => d.retryAfterMs,
    refusal: (d) => ({ ...d, allowed: false, retryAfterMs: 1, deniedBy: 'queue' }),
  }
}

/** Limiter.consume with wait options (see WaitOptions). */
export async function consumeWaiting(
  limiter: Limiter,
  subject: string,
  costs: Costs | undefined,
  options: WaitOptions,
  id: string,
): Promise<Decision> {
  const wait = resolveWait(options)
  const perLimit = limiter.costsFor(costs)
  if (wait === undefined) return limiter.consume(subject, costs)
  const waited = await decideWaiting(attemptOf(limiter, 'consume', subject, perLimit, id), wait)
  return waited.queued ? { ...waited.decision, waitedMs: Math.round(waited.waitedMs) } : waited.decision
}

/** Limiter.reserve with wait options (see WaitOptions). */
export async function reserveWaiting(
  limiter: Limiter,
  subject: string,
  estimate: Costs | undefined,
  options: WaitOptions,
  id: string,
): Promise<Reservation> {
  const wait = resolveWait(options)
  if (wait === undefined) return limiter.reserve(subject, estimate)
  const perLimit = limiter.costsFor(estimate)
  const waited = await decideWaiting(attemptOf(limiter, 'reserve', subject, perLimit, id), wait)
  const decision = waited.queued
    ? { ...waited.decision, waitedMs: Math.round(waited.waitedMs) }
    : waited.decision
  return new Reservation(limiter, subject, id, perLimit, decision)
}
