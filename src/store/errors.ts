/**
 * The store could not be reached in time (down, disconnected, timed out, or the circuit breaker is
 * open) and the policy is to fail closed. The HTTP layer answers 503 with `Retry-After`.
 */
export class StoreUnavailableError extends Error {
  override name = 'StoreUnavailableError'
  /** A sensible wait before trying again, in milliseconds (never 0). */
  readonly retryAfterMs: number

  constructor(message: string, options: { cause?: unknown; retryAfterMs?: number } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.retryAfterMs = Math.max(1, Math.ceil(options.retryAfterMs ?? 1000))
  }
}

/** A store call that did not answer within its deadline. */
export class StoreTimeoutError extends StoreUnavailableError {
  override name = 'StoreTimeoutError'

  constructor(timeoutMs: number) {
    super(`the store did not answer within ${timeoutMs} ms`)
  }
}
