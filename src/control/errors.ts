import { describe, SluiceInputError } from '../core/errors.js'

/**
 * Bad input to the control plane (an admin API 400): `field` names the offending field, e.g.
 * `budgets.usd.limit`, and the message says what was expected.
 */
export class ControlInputError extends SluiceInputError {
  override name = 'ControlInputError'
  constructor(
    readonly field: string,
    expected: string,
    /** The value given, when it helps to show it (never for a URL or a secret). */
    ...got: [] | [unknown]
  ) {
    super(`${field} ${expected}${got.length > 0 ? `, got ${describeShort(got[0])}` : ''}`)
  }
}

/** No key, team, user or row with this id (an admin API 404). */
export class NotFoundError extends Error {
  override name = 'NotFoundError'
  constructor(
    readonly kind: 'key' | 'team' | 'user',
    readonly id: string,
  ) {
    super(`no ${kind} with id ${describeShort(id)}`)
  }
}

/** The change conflicts with the current state: a duplicate id, a team still owning keys… (a 409). */
export class ConflictError extends Error {
  override name = 'ConflictError'
}

/** `describe` cut short: input can be hostile and huge, an error message should not be. */
export function describeShort(value: unknown): string {
  const text = describe(value)
  return text.length > 120 ? `${text.slice(0, 117)}...` : text
}
