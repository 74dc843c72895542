import { ControlInputError } from './errors.js'

/** A JSON value as stored in the JSON columns. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json }
export type JsonObject = { [key: string]: Json }

/**
 * One limit as written under a tier's `limits` in sluice.yaml (`{ kind: 'slidingWindow', limit,
 * window, unit? }`…). The control plane stores and returns it; its fields are checked by the
 * `validateLimits` hook the gateway passes in (the config's own schema), not here.
 */
export interface LimitSpec {
  kind: string
  [field: string]: Json | undefined
}
/** Per-key (team, user) limit overrides: replaces or adds limits by name; null removes one. */
export type LimitOverrides = Record<string, LimitSpec | null>

const LIMIT_NAME = /^[A-Za-z0-9_-]{1,64}$/
const MAX_JSON_DEPTH = 16

export function requireText(value: unknown, field: string, max = 200): string {
  if (typeof value !== 'string' || value.trim() === '') {
    throw new ControlInputError(field, 'must be a non-empty string', value)
  }
  if (value.length > max) throw new ControlInputError(field, `must be at most ${max} characters`)
  if (hasControlCharacter(value)) throw new ControlInputError(field, 'must not contain control characters')
  return value
}

function hasControlCharacter(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i)
    if (code < 0x20 || code === 0x7f) return true
  }
  return false
}

/** undefined stays undefined (not given), null clears, anything else must be text. */
export function optionalText(value: unknown, field: string, max = 200): string | null | undefined {
  if (value === undefined || value === null) return value
  return requireText(value, field, max)
}

const SLUG = /^[a-z0-9][a-z0-9_.-]{0,63}$/
/** Team ids: lowercase slugs, usable in URLs, subjects and Redis hash tags as they are. */
export function requireSlug(value: unknown, field: string): string {
  if (typeof value !== 'string' || !SLUG.test(value)) {
    throw new ControlInputError(
      field,
      'must be 1-64 lowercase letters, digits, "_", "." or "-", starting with a letter or digit',
      value,
    )
  }
  return value
}

/** End-user ids come from requests (X-User-ID): any printable text up to 256 characters. */
export function requireUserId(value: unknown, field: string): string {
  return requireText(value, field, 256)
}

/** A time as epoch milliseconds, an ISO 8601 string or a Date; null clears it. */
export function timeInput(value: unknown, field: string): number | null | undefined {
  if (value === undefined || value === null) return value
  let ms: number
  if (value instanceof Date) ms = value.getTime()
  else if (typeof value === 'number') ms = value
  else if (typeof value === 'string' && /^\d{4}-\d{2}-\d{2}/.test(value)) ms = Date.parse(value)
  else throw new ControlInputError(field, 'must be an ISO 8601 time, epoch milliseconds or null', value)
  if (!Number.isSafeInteger(ms) || ms < 0) {
    throw new ControlInputError(field, 'must be a valid time after 1970', value)
  }
  return ms
}

export function isoTime(ms: number): string
export function isoTime(ms: number | null): string | null
export function isoTime(ms: number | null): string | null {
  return ms === null ? null : new Date(Number(ms)).toISOString()
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false
  const proto = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

/** Throws unless `value` is made only of JSON values (no undefined, functions, NaN, Dates…). */
function checkJson(value: unknown, field: string, depth: number): void {
  if (depth > MAX_JSON_DEPTH) throw new ControlInputError(field, `nests deeper than ${MAX_JSON_DEPTH} levels`)
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new ControlInputError(field, 'must be a finite number', value)
    return
  }
  if (Array.isArray(value)) {
    value.forEach((v, i) => {
      checkJson(v, `${field}[${i}]`, depth + 1)
    })
    return
  }
  if (isPlainObject(value)) {
    for (const [k, v] of Object.entries(value)) checkJson(v, `${field}.${k}`, depth + 1)
    return
  }
  throw new ControlInputError(field, 'must hold only JSON values', typeof value)
}

/** A JSON object serialised for a JSON column, bounded in size. undefined / null pass through. */
export function jsonObjectText(value: unknown, field: string, maxBytes = 16_384): string | null | undefined {
  if (value === undefined || value === null) return value
  if (!isPlainObject(value)) throw new ControlInputError(field, 'must be a JSON object', value)
  checkJson(value, field, 0)
  const text = JSON.stringify(value)
  if (Buffer.byteLength(text) > maxBytes) {
    throw new ControlInputError(field, `must be at most ${maxBytes} bytes of JSON`)
  }
  return text
}

/**
 * Limit overrides, checked structurally (an object of named limits, each an object with a `kind`
 * or null), then by the caller's hook when one is given (the gateway's config schema).
 */
export function limitsText(
  value: unknown,
  field: string,
  hook?: (limits: LimitOverrides, field: string) => void,
): string | null | undefined {
  if (value === undefined || value === null) return value
  if (!isPlainObject(value)) throw new ControlInputError(field, 'must be an object of named limits', value)
  for (const [name, limit] of Object.entries(value)) {
    if (!LIMIT_NAME.test(name)) {
      throw new ControlInputError(
        `${field}.${name.slice(0, 64)}`,
        'must be named with 1-64 letters, digits, "_" or "-"',
      )
    }
    if (limit === null) continue
    if (!isPlainObject(limit) || typeof limit.kind !== 'string') {
      throw new ControlInputError(`${field}.${name}`, 'must be a limit object with a "kind", or null', limit)
    }
  }
  const text = jsonObjectText(value, field)
  hook?.(value as LimitOverrides, field)
  return text
}

export function parseJson<T>(text: string | null): T | null {
  return text === null ? null : (JSON.parse(text) as T)
}

/** Page sizes: 1..max, default `fallback`. */
export function pageLimit(value: unknown, field: string, fallback: number, max: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1 || value > max) {
    throw new ControlInputError(field, `must be a whole number from 1 to ${max}`, value)
  }
  return value
}

export function pageOffset(value: unknown, field: string): number {
  if (value === undefined) return 0
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new ControlInputError(field, 'must be a whole number ≥ 0', value)
  }
  return value
}

export function requireActor(options: { actor?: unknown } | undefined): string {
  return requireText(options?.actor, 'actor', 200)
}

/** Escapes LIKE wildcards so that a search term matches literally (with ESCAPE '\'). */
export function likePattern(term: string): string {
  return `%${term.replace(/[\\%_]/g, (c) => `\\${c}`)}%`
}
