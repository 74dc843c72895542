import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { API_KEY_PREFIX } from '../http/keys.js'

/**
 * Keys from the database look like `sk-sluice-<id>-<secret>`:
 * - `<id>`: 10 characters of lowercase RFC 4648 base32 (a-z, 2-7; 50 bits) — the public id that
 *   logs, the ledger, metrics and the admin API show. It has no `-`, so the first `-` after it
 *   ends it.
 * - `<secret>`: 43 URL-safe base64 characters (32 random bytes, 256 bits). Only its SHA-256 is stored.
 */
export const PUBLIC_ID_LENGTH = 10
const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567'
const PUBLIC_ID = /^[a-z2-7]{10}$/
/** Accepts longer secrets than it issues (room to grow), never shorter than 192 bits. */
const SECRET = /^[A-Za-z0-9_-]{32,128}$/
/** The longest key string parseKey reads. */
export const MAX_KEY_LENGTH = API_KEY_PREFIX.length + PUBLIC_ID_LENGTH + 1 + 128

export interface ParsedKey {
  id: string
  secret: string
}

export function generatePublicId(): string {
  // 32 divides 256: taking 5 bits of each byte is uniform.
  const bytes = randomBytes(PUBLIC_ID_LENGTH)
  let id = ''
  for (const byte of bytes) id += BASE32[byte & 31]
  return id
}

export function generateSecret(): string {
  return randomBytes(32).toString('base64url')
}

export function formatKey(id: string, secret: string): string {
  return `${API_KEY_PREFIX}${id}-${secret}`
}

export function isPublicId(value: unknown): value is string {
  return typeof value === 'string' && PUBLIC_ID.test(value)
}

/**
 * Splits a presented key into its public id and secret, or undefined when it is not shaped like a
 * database key. Cheap, and bounded before any regex runs: hostile input costs nothing here.
 */
export function parseKey(presented: unknown): ParsedKey | undefined {
  if (typeof presented !== 'string' || presented.length > MAX_KEY_LENGTH) return undefined
  if (!presented.startsWith(API_KEY_PREFIX)) return undefined
  const idEnd = API_KEY_PREFIX.length + PUBLIC_ID_LENGTH
  if (presented.charCodeAt(idEnd) !== 45 /* - */) return undefined
  const id = presented.slice(API_KEY_PREFIX.length, idEnd)
  const secret = presented.slice(idEnd + 1)
  if (!PUBLIC_ID.test(id) || !SECRET.test(secret)) return undefined
  return { id, secret }
}

/** SHA-256 of the secret as 64 lowercase hex digits: what the database stores. */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex')
}

/**
 * Whether `secret` hashes to `storedHash`, comparing the digests in constant time (the time taken
 * does not depend on how many leading bytes match). A malformed stored hash never matches.
 */
export function secretMatches(secret: string, storedHash: string | null | undefined): boolean {
  if (typeof storedHash !== 'string' || storedHash.length !== 64) return false
  const expected = Buffer.from(storedHash, 'hex')
  if (expected.length !== 32) return false
  const actual = createHash('sha256').update(secret, 'utf8').digest()
  return timingSafeEqual(actual, expected)
}
