import { describe, requirePositiveFinite, requirePositiveInteger, SluiceInputError } from '../errors.js'
import type { Unit } from './types.js'

export const WELL_KNOWN_UNITS: readonly Unit[] = ['requests', 'tokens', 'usd', 'concurrent']

export function unitOf(unit: unknown, fallback: Unit, what: string): Unit {
  if (unit === undefined) return fallback
  if (typeof unit !== 'string' || !/^[a-z][a-z0-9_]*$/i.test(unit)) {
    throw new SluiceInputError(`${what}.unit must be a word such as "tokens", got ${describe(unit)}`)
  }
  return unit
}

export function optionsOf(options: unknown, what: string): Record<string, unknown> {
  if (typeof options !== 'object' || options === null) {
    throw new SluiceInputError(`${what} needs an options object, got ${describe(options)}`)
  }
  return options as Record<string, unknown>
}

/** The options of a limit over a window: unit (default requests), limit and windowMs. */
export function windowOptions(options: unknown, what: string) {
  const o = optionsOf(options, what)
  return {
    unit: unitOf(o.unit, 'requests', what),
    limit: requirePositiveFinite(o.limit, `${what}.limit`),
    windowMs: requirePositiveInteger(o.windowMs, `${what}.windowMs`),
  }
}
