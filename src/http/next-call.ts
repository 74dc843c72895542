import { isInFlight } from '../core/limits.js'
import type { Decision } from '../limiter.js'
import type { HeaderGroups } from './headers.js'
import { nextUnitMs, remainingOf } from './quota.js'

/**
 * Whether the reset headers of an admitted call need to know when the next call would pass: a
 * rate limit this call left with nothing, whose figures do not tell when more comes back (a
 * sliding window or log: it depends on when the charges in the window were made). Such a limit
 * is the tightest, so its reset is the one the headers show. Once per subject and window in
 * steady use — the next calls are refused, and a refusal carries its own wait. Cheap: one pass.
 */
export function needsNextCall(
  decision: Decision,
  groups: Readonly<HeaderGroups>,
  concurrencyRetryCapMs: number,
): boolean {
  // `fallback` is undefined but for an unverified decision: tested first, the string compare (a
  // builtin call where the type is not known) is left to those.
  const fallback = decision.fallback
  if (!decision.allowed || (fallback !== undefined && fallback === 'open')) return false
  if (!groups.ietf && !groups.legacy && !groups.openai) return false
  const limits = decision.limits
  for (let i = 0; i < limits.length; i++) {
    const l = limits[i]!
    if (l.remaining >= 1 || isInFlight(l.kind)) continue
    if (remainingOf(l) === 0 && nextUnitMs(l, concurrencyRetryCapMs) === undefined) return true
  }
  return false
}
