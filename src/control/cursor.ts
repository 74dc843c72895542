import { ControlInputError } from './errors.js'

/**
 * Keyset cursors: the sort key of the last row of a page, as opaque URL-safe text. Decoding
 * checks the shape, so a forged cursor is a 400, never a query on garbage.
 */
export function encodeCursor(parts: readonly number[]): string {
  return Buffer.from(parts.join('.'), 'utf8').toString('base64url')
}

export function decodeCursor(cursor: unknown, field: string, count: number): number[] {
  if (typeof cursor !== 'string' || cursor.length === 0 || cursor.length > 200) {
    throw new ControlInputError(field, 'must be the `next` value of a previous page', cursor)
  }
  const parts = Buffer.from(cursor, 'base64url').toString('utf8').split('.')
  if (parts.length !== count || !parts.every((p) => /^\d{1,16}$/.test(p))) {
    throw new ControlInputError(field, 'must be the `next` value of a previous page', cursor)
  }
  return parts.map(Number)
}
