import { type HeaderBag, headerOf } from './request.js'

/** An `Authorization` header that is there but is not `Bearer <one token>`. */
export const MALFORMED_KEY: unique symbol = Symbol('malformed API key header')

const BEARER = /^Bearer[ \t]+([^\s,]+)[ \t]*$/i

/**
 * The API key a request presents, from the first of `apiKeyHeaders` it carries (lower-case
 * names): a header's value as it is, or for `authorization` the token of `Bearer <token>`. An
 * `Authorization` header of any other form (`Basic …`, `Bearer k1 k2`, `Bearer` alone) is
 * MALFORMED_KEY: a failed authentication, like an unknown key — never a request without a key,
 * which would get the anonymous tier. Headers not in `apiKeyHeaders` are never read, so an app
 * that uses `Authorization` for its own tokens leaves it out of the list.
 */
export function readApiKey(
  headers: HeaderBag,
  apiKeyHeaders: readonly string[],
): string | typeof MALFORMED_KEY | undefined {
  for (const name of apiKeyHeaders) {
    const value = headerOf(headers, name)
    if (value === undefined || value.trim() === '') continue
    if (name !== 'authorization') return value.trim()
    const match = BEARER.exec(value.trim())
    return match === null ? MALFORMED_KEY : match[1]
  }
  return undefined
}
