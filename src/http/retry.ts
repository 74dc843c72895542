import { isInFlight } from '../core/limits.js'
import type { Decision, LimitStatus } from '../limiter.js'

/**
 * The longest wait a client is told to sleep through before retrying by itself (60 s): the
 * official openai SDK sleeps for whatever `retry-after-ms` says — an hour, twice — unless told
 * `x-should-retry: false`.
 */
export const DEFAULT_MAX_RETRY_WAIT_MS = 60_000

/**
 * The wait to tell a client. A denial by a concurrency limit reports the time until leases expire,
 * an upper bound (calls usually end sooner), so it is capped at `concurrencyRetryCapMs` — unless
 * another limit that also denied needs longer.
 */
export function advertisedRetryMs(decision: Decision, concurrencyRetryCapMs: number): number {
  if (decision.allowed) return 0
  const retry = decision.retryAfterMs
  if (decision.blocked || !Number.isFinite(retry)) return retry
  // A loop, not find(): its closure made a context on every call, allowed ones too.
  let by: LimitStatus | undefined
  for (const l of decision.limits) {
    if (l.name === decision.deniedBy) {
      by = l
      break
    }
  }
  if (by === undefined || !isInFlight(by.kind)) return retry
  let floor = concurrencyRetryCapMs
  for (const l of decision.limits) {
    if (!l.allowed && !isInFlight(l.kind)) floor = Math.max(floor, l.resetMs)
  }
  return Math.max(1, Math.min(retry, floor))
}

/**
 * Whether a client should retry a refused call by itself (else `x-should-retry: false`, and the
 * SDKs that honour it fail at once with the wait in the error's message): not when blocked, not
 * when the call can never pass, and not when the wait (`retryMs`, as advertised) is longer than
 * `maxRetryWaitMs` — a client that sleeps that long inside one call looks hung.
 */
export function shouldRetry(
  decision: Decision,
  retryMs: number = decision.retryAfterMs,
  maxRetryWaitMs: number = DEFAULT_MAX_RETRY_WAIT_MS,
): boolean {
  if (decision.allowed) return true
  if (decision.blocked || !Number.isFinite(retryMs)) return false
  return retryMs <= maxRetryWaitMs
}
