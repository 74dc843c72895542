import type { Costs, Decision, Limiter, Reservation } from '../../src/limiter.js'

/** One random call, made the same way on each limiter compared: its decision, or undefined. */
export type LimiterCall = (limiter: Limiter, held: Map<string, Reservation>) => Promise<Decision | undefined>

/**
 * A random call of `subject`: consumeSync, peek, consume, reserve, then settle (with `settled`'s
 * costs) or cancel the held reservation, reset, unblock. `costs` and `settled` draw from `r`.
 */
export function randomLimiterCall(
  r: () => number,
  subject: string,
  costs: () => Costs | undefined,
  settled: () => Costs | undefined = costs,
): LimiterCall {
  const x = r()
  const charge = costs()
  if (x < 0.5) return async (l) => l.consumeSync(subject, charge)
  if (x < 0.6) return (l) => l.peek(subject, charge)
  if (x < 0.7) return (l) => l.consume(subject, charge)
  if (x < 0.8) {
    return async (l, held) => {
      const reservation = await l.reserve(subject, charge)
      held.set(subject, reservation)
      return reservation.decision
    }
  }
  if (x < 0.92) {
    const cancel = r() < 0.3
    const actual = settled()
    return async (_l, held) => {
      const reservation = held.get(subject)
      if (reservation === undefined) return undefined
      held.delete(subject)
      return cancel ? reservation.cancel() : reservation.settle(actual)
    }
  }
  if (x < 0.96) return (l) => l.reset(subject)
  return (l) => l.unblock(subject)
}

/** The decision of a call, with its keys in order and its statuses', or the error it threw. */
export async function callOutcome(call: LimiterCall, limiter: Limiter, held: Map<string, Reservation>) {
  try {
    const decision = await call(limiter, held)
    const order = decision && [Object.keys(decision), decision.limits.map((s) => Object.keys(s))]
    return { decision, order }
  } catch (error) {
    return { error: String(error) }
  }
}
