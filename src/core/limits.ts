import { describe, requirePositiveFinite, requirePositiveInteger, SluiceInputError } from './errors.js'

/** The unit a limit counts. Free-form; these are the ones sluice itself speaks of. */
export type Unit = 'requests' | 'tokens' | 'usd' | 'concurrent' | (string & {})

export const WELL_KNOWN_UNITS: readonly Unit[] = ['requests', 'tokens', 'usd', 'concurrent']

export interface TokenBucketLimit {
  kind: 'tokenBucket'
  unit: Unit
  capacity: number
  refillPerSecond: number
  /** Milliseconds to refill one unit. */
  intervalMs: number
}

export interface FixedWindowLimit {
  kind: 'fixedWindow'
  unit: Unit
  limit: number
  windowMs: number
}

export interface SlidingWindowLimit {
  kind: 'slidingWindow'
  unit: Unit
  limit: number
  windowMs: number
}

export interface SlidingLogLimit {
  kind: 'slidingLog'
  unit: Unit
  limit: number
  windowMs: number
}

export interface ConcurrencyLimit {
  kind: 'concurrency'
  unit: Unit
  limit: number
  leaseMs: number
}

export type LimitDefinition =
  | TokenBucketLimit
  | FixedWindowLimit
  | SlidingWindowLimit
  | SlidingLogLimit
  | ConcurrencyLimit

function unitOf(unit: unknown, fallback: Unit, what: string): Unit {
  if (unit === undefined) return fallback
  if (typeof unit !== 'string' || !/^[a-z][a-z0-9_]*$/i.test(unit)) {
    throw new SluiceInputError(`${what}.unit must be a word such as "tokens", got ${describe(unit)}`)
  }
  return unit
}

function optionsOf(options: unknown, what: string): Record<string, unknown> {
  if (typeof options !== 'object' || options === null) {
    throw new SluiceInputError(`${what} needs an options object, got ${describe(options)}`)
  }
  return options as Record<string, unknown>
}

/** Token bucket: up to `capacity` at once, refilled continuously at `refillPerSecond`. */
export function tokenBucket(options: {
  capacity: number
  refillPerSecond: number
  unit?: Unit
}): TokenBucketLimit {
  const o = optionsOf(options, 'tokenBucket()')
  const capacity = requirePositiveFinite(o.capacity, 'tokenBucket().capacity')
  const refillPerSecond = requirePositiveFinite(o.refillPerSecond, 'tokenBucket().refillPerSecond')
  return {
    kind: 'tokenBucket',
    unit: unitOf(o.unit, 'requests', 'tokenBucket()'),
    capacity,
    refillPerSecond,
    intervalMs: 1000 / refillPerSecond,
  }
}

function windowOptions(options: unknown, what: string) {
  const o = optionsOf(options, what)
  return {
    unit: unitOf(o.unit, 'requests', what),
    limit: requirePositiveFinite(o.limit, `${what}.limit`),
    windowMs: requirePositiveInteger(o.windowMs, `${what}.windowMs`),
  }
}

/** At most `limit` per window of `windowMs`, windows aligned to the epoch. */
export function fixedWindow(options: { limit: number; windowMs: number; unit?: Unit }): FixedWindowLimit {
  return { kind: 'fixedWindow', ...windowOptions(options, 'fixedWindow()') }
}

/**
 * At most `limit` in any window of `windowMs`. By default the two-window weighted counter (O(1)
 * memory); `exact: true` keeps a log of every charge instead (see slidingLog).
 */
export function slidingWindow(options: {
  limit: number
  windowMs: number
  unit?: Unit
  exact?: boolean
}): SlidingWindowLimit | SlidingLogLimit {
  const exact = optionsOf(options, 'slidingWindow()').exact
  if (exact !== undefined && typeof exact !== 'boolean') {
    throw new SluiceInputError(`slidingWindow().exact must be true or false, got ${describe(exact)}`)
  }
  return { kind: exact ? 'slidingLog' : 'slidingWindow', ...windowOptions(options, 'slidingWindow()') }
}

/** Exact sliding window: one log entry per charge. */
export function slidingLog(options: { limit: number; windowMs: number; unit?: Unit }): SlidingLogLimit {
  return { kind: 'slidingLog', ...windowOptions(options, 'slidingLog()') }
}

/** At most `limit` calls in flight; each lease expires after `leaseMs` if never released. */
export function concurrency(options: { limit: number; leaseMs?: number }): ConcurrencyLimit {
  const o = optionsOf(options, 'concurrency()')
  return {
    kind: 'concurrency',
    unit: 'concurrent',
    limit: requirePositiveInteger(o.limit, 'concurrency().limit'),
    leaseMs: o.leaseMs === undefined ? 120_000 : requirePositiveInteger(o.leaseMs, 'concurrency().leaseMs'),
  }
}

export function capacityOf(limit: LimitDefinition): number {
  return limit.kind === 'tokenBucket' ? limit.capacity : limit.limit
}

/** Seconds the limit describes: a window, or the time to refill an empty bucket. */
export function windowSecondsOf(limit: LimitDefinition): number {
  switch (limit.kind) {
    case 'tokenBucket':
      return limit.capacity / limit.refillPerSecond
    case 'concurrency':
      return limit.leaseMs / 1000
    default:
      return limit.windowMs / 1000
  }
}
