import { describe, SluiceInputError } from '../core/errors.js'
import { Sluice } from './core.js'
import type { CostSpec, SluiceOptions } from './options.js'
import type { RequestLike } from './request.js'
import type { CheckResult } from './state.js'

/**
 * What every adapter accepts: options, or a Sluice made elsewhere (to share one core between
 * several apps, adapters or the gateway).
 */
export type SluiceInput<Req> = SluiceOptions<Req> | Sluice<Req>

/** The core for an adapter; `adapterOptions` are the adapter's own option names, removed first. */
export function coreFrom<Req>(
  input: SluiceInput<Req> | undefined,
  adapterOptions: readonly string[] = [],
): Sluice<Req> {
  if (input instanceof Sluice) return input
  if (input === undefined) return new Sluice<Req>()
  if (typeof input !== 'object' || input === null) {
    throw new SluiceInputError(`sluice options must be an object, got ${describe(input)}`)
  }
  if (adapterOptions.length === 0) return new Sluice<Req>(input)
  const rest: Record<string, unknown> = { ...input }
  for (const name of adapterOptions) delete rest[name]
  return new Sluice<Req>(rest as SluiceOptions<Req>)
}

const checked = new WeakMap<object, WeakSet<object>>()

/**
 * Records that `core` checked `req`; false when it had already (the same limiter mounted both
 * globally and on a route): the request is counted once.
 */
export function firstCheck(core: object, req: object): boolean {
  let seen = checked.get(core)
  if (seen === undefined) {
    seen = new WeakSet()
    checked.set(core, seen)
  }
  if (seen.has(req)) return false
  seen.add(req)
  return true
}

/**
 * Checks a request and hands the result to `use`: at once when the core could decide at once
 * (a MemoryStore and nothing asynchronous), else when it resolves. Errors go to `fail`. For
 * callback-style frameworks (Express, Fastify hooks), where waiting for a promise would cost
 * every request a microtask for nothing.
 */
export function checkThen<Req>(
  core: Sluice<Req>,
  req: RequestLike,
  native: Req,
  cost: CostSpec<Req> | undefined,
  use: (result: CheckResult) => void,
  fail: (error: Error) => void,
): void {
  let result: CheckResult | Promise<CheckResult>
  try {
    result = core.checkNow(req, native, cost)
  } catch (error) {
    fail(error as Error)
    return
  }
  if (result instanceof Promise) result.then(use, fail)
  else use(result)
}
