import type { Selectable } from 'kysely'
import type { Budgets } from './budgets.js'
import { secretMatches } from './key-format.js'
import type { KeyQueue } from './key-queue.js'
import type { KeysTable } from './schema.js'
import { isoTime, type JsonObject, type LimitOverrides, parseJson } from './validate.js'

/** `expired` is derived from `expiresAt` at the time of reading. */
export type KeyStatus = 'active' | 'revoked' | 'expired'

/** A key as the admin API, the CLI and the audit log show it: never its secret nor any hash. */
export interface KeyInfo {
  /** The public id: `sk-sluice-<id>-…`; what logs, the ledger and metrics name. */
  id: string
  name: string
  tier: string
  team: string | null
  /** The end user this key belongs to (for tiers counted per user), if any. */
  user: string | null
  limits: LimitOverrides | null
  /** Queue settings over the tier's (docs/queueing.md); null: the tier's. */
  queue: KeyQueue | null
  budgets: Budgets | null
  metadata: JsonObject | null
  status: KeyStatus
  expiresAt: string | null
  revokedAt: string | null
  /** Until when the secret replaced by the last rotation still works (absent once it does not). */
  previousSecretValidUntil: string | null
  createdAt: string
  updatedAt: string
  /** Recorded in batches (every few seconds), not to the millisecond. */
  lastUsedAt: string | null
}

/** What `create` and `rotate` answer: the record and, this one time, the whole key. */
export interface IssuedKey extends KeyInfo {
  key: string
}

/**
 * A key with what it takes to check a presented secret. For the hot path (the key cache) only:
 * it holds hashes — never serialise it, log it or return it from an API.
 */
export interface KeyCredentials {
  info: KeyInfo
  secretHash: string
  previousSecretHash: string | null
  previousExpiresAt: number | null
  expiresAt: number | null
  revokedAt: number | null
}

export function statusOf(
  row: Pick<Selectable<KeysTable>, 'revoked_at' | 'expires_at'>,
  now: number,
): KeyStatus {
  if (row.revoked_at !== null) return 'revoked'
  if (row.expires_at !== null && Number(row.expires_at) <= now) return 'expired'
  return 'active'
}

export function keyInfoOf(row: Selectable<KeysTable>, now: number): KeyInfo {
  const previousEnd = row.previous_expires_at === null ? null : Number(row.previous_expires_at)
  return {
    id: row.id,
    name: row.name,
    tier: row.tier,
    team: row.team_id,
    user: row.user_id,
    limits: parseJson<LimitOverrides>(row.limits),
    queue: parseJson<KeyQueue>(row.queue),
    budgets: parseJson<Budgets>(row.budgets),
    metadata: parseJson<JsonObject>(row.metadata),
    status: statusOf(row, now),
    expiresAt: isoTime(row.expires_at === null ? null : Number(row.expires_at)),
    revokedAt: isoTime(row.revoked_at === null ? null : Number(row.revoked_at)),
    previousSecretValidUntil:
      row.previous_secret_hash !== null && previousEnd !== null && previousEnd > now
        ? isoTime(previousEnd)
        : null,
    createdAt: isoTime(Number(row.created_at)),
    updatedAt: isoTime(Number(row.updated_at)),
    lastUsedAt: isoTime(row.last_used_at === null ? null : Number(row.last_used_at)),
  }
}

export function credentialsOf(row: Selectable<KeysTable>, now: number): KeyCredentials {
  return {
    info: keyInfoOf(row, now),
    secretHash: row.secret_hash,
    previousSecretHash: row.previous_secret_hash,
    previousExpiresAt: row.previous_expires_at === null ? null : Number(row.previous_expires_at),
    expiresAt: row.expires_at === null ? null : Number(row.expires_at),
    revokedAt: row.revoked_at === null ? null : Number(row.revoked_at),
  }
}

/**
 * Whether `secret` opens the key at `now`: not revoked, not expired, and the current secret — or,
 * until the rotation's grace ends, the previous one. Hashes are compared in constant time.
 */
export function secretOpens(credentials: KeyCredentials, secret: string, now: number): boolean {
  if (credentials.revokedAt !== null) return false
  if (credentials.expiresAt !== null && now >= credentials.expiresAt) return false
  if (secretMatches(secret, credentials.secretHash)) return true
  return (
    credentials.previousExpiresAt !== null &&
    now < credentials.previousExpiresAt &&
    secretMatches(secret, credentials.previousSecretHash)
  )
}
