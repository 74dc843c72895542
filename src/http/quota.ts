import { algorithmOf } from '../core/limits.js'
import type { LimitStatus } from '../limiter.js'

/**
 * A limit's figures as the rate-limit headers give them: whole numbers, in the limit's own unit,
 * or in millionths of it (`usd-micros`) where the unit is fractional — dollars always, and any
 * limit whose quota is not a whole number. The IETF draft's `q` and `r` are integers, so a $0.0002
 * budget is `q=200;qu="usd-micros"` rather than dropped or rounded to nothing.
 */
const MICROS = 1e6

/** Units the headers count in millionths of: fractional by nature, or by their quota. */
export function quotaScale(l: LimitStatus): number {
  return l.unit === 'usd' || !Number.isInteger(l.limit) ? MICROS : 1
}

/** The IETF `qu` value: "requests", "concurrent-requests", "usd-micros", "tokens"… */
export function quotaUnit(l: LimitStatus): string {
  if (l.unit === 'concurrent') return 'concurrent-requests'
  return quotaScale(l) === 1 ? l.unit : `${l.unit}-micros`
}

/** The quota `q`, a whole number of quota units. */
export function quotaOf(l: LimitStatus): number {
  return Math.round(l.limit * quotaScale(l))
}

/**
 * What is left, `r`: rounded down to whole quota units, 0 when in debt, never above `q`. The
 * slack absorbs float noise (0.159 × 10⁶ is 158999.99999999997).
 */
export function remainingOf(l: LimitStatus): number {
  if (!(l.remaining > 0)) return 0
  return Math.min(quotaOf(l), Math.floor(l.remaining * quotaScale(l) + 1e-6))
}

/** The window `w` in whole seconds, at least 1 (a token bucket's is its time to refill from empty). */
export function windowOf(l: LimitStatus): number {
  return Math.max(1, Math.round(l.windowSeconds))
}

/**
 * Milliseconds until one more quota unit of a limit that has none left is available, when the
 * limit's figures tell it (its algorithm's `refill`): a window or period refills at its end; a token bucket's `resetMs` is the
 * exact time until it is full, so one unit comes back that time minus the refill of all the
 * others; an in-flight slot is told as the capped wait of a concurrency denial. Otherwise
 * (sliding windows and logs) undefined: it depends on when the charges in the window were made.
 */
export function nextUnitMs(l: LimitStatus, concurrencyRetryCapMs: number): number | undefined {
  const refill = algorithmOf(l.kind).refill
  switch (refill) {
    case 'windowEnd':
      return l.resetMs
    case 'release':
      return Math.min(l.resetMs, concurrencyRetryCapMs)
    case 'continuous': {
      const fullMs = l.windowSeconds * 1000
      const unitMs = fullMs / (l.limit * quotaScale(l))
      return Math.max(0, l.resetMs - (fullMs - unitMs))
    }
    case 'sliding':
      return undefined
  }
}

/**
 * Milliseconds until more of a limit is available — the IETF `t` (in seconds, rounded up), the
 * legacy and OpenAI-style reset — never beyond the window `w`, and never past the moment the
 * client's next call of the same size would pass:
 *
 * - the limit refused this call: until the call would pass (`retryMs`); for a call that can never
 *   pass, until the limit is full again (or, with nothing left, until one more unit is);
 * - something left: until it is full again (cut at `w`: a sliding window counter takes up to two
 *   windows to forget a charge, and a bucket in debt longer than `w` to refill);
 * - nothing left after an admitted call: until one more unit is available (nextUnitMs), else
 *   `nextCallMs` — the wait the caller learnt for its next call (a peek); undefined when unknown,
 *   and then the headers leave the reset out rather than guess.
 */
export function resetMsOf(
  l: LimitStatus,
  r: number,
  retryMs: number,
  nextCallMs: number | undefined,
  concurrencyRetryCapMs: number,
): number | undefined {
  let ms: number | undefined
  if (!l.allowed && Number.isFinite(retryMs)) ms = retryMs
  else if (r > 0) ms = l.resetMs
  else ms = nextUnitMs(l, concurrencyRetryCapMs) ?? nextCallMs
  if (ms === undefined || !Number.isFinite(ms)) return undefined
  return Math.min(Math.max(0, ms), windowOf(l) * 1000)
}
