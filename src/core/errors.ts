/** Thrown for a bad option or argument, before any store call; the message names the bad value. */
export class SluiceInputError extends TypeError {
  override name = 'SluiceInputError'
}

export function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value)
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean')
    return String(value)
  if (value === undefined || value === null) return String(value)
  try {
    return JSON.stringify(value) ?? typeof value
  } catch {
    return typeof value
  }
}

export function requirePositiveFinite(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new SluiceInputError(`${what} must be a positive finite number, got ${describe(value)}`)
  }
  return value
}

export function requirePositiveInteger(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    throw new SluiceInputError(`${what} must be a positive whole number, got ${describe(value)}`)
  }
  return value
}

export function requireCost(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new SluiceInputError(`${what} must be a non-negative finite number, got ${describe(value)}`)
  }
  return value
}
