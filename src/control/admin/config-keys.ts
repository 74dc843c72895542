/**
 * Keys of sluice.yaml (`auth.keys`, and the demo key `auth.demoKey` makes) as the admin API and the
 * CLI show them: beside the database's keys, read-only — they are changed in the file and applied
 * by a reload (`kill -HUP`), never through the API. One shape with the database's keys (the same
 * fields; what the file does not say is null) plus `source` and `readOnly`, so a client lists both
 * the same way.
 */
import { ConflictError } from '../errors.js'
import type { KeyInfo } from '../key-records.js'

/** What the file says of a key (a registry record, or an `auth.keys` entry with its id resolved). */
export interface ConfigKeyEntry {
  id: string
  tier: string
  name?: string | undefined
  user?: string | undefined
  revoked?: boolean | undefined
}

/** A key as the admin API lists it: from the database (changeable) or sluice.yaml (read-only). */
export type ListedKey = DatabaseKey | ConfigKeyInfo

export interface DatabaseKey extends KeyInfo {
  source: 'database'
  readOnly: false
}

export interface ConfigKeyInfo
  extends Omit<KeyInfo, 'createdAt' | 'updatedAt' | 'team' | 'limits' | 'budgets' | 'metadata' | 'status'> {
  team: null
  limits: null
  budgets: null
  metadata: null
  status: 'active' | 'revoked'
  createdAt: null
  updatedAt: null
  source: 'sluice.yaml'
  readOnly: true
}

/** A write (update, revoke, rotate) on a key of sluice.yaml: answered 409 `read_only_key`. */
export class ReadOnlyKeyError extends ConflictError {
  override name = 'ReadOnlyKeyError'
  constructor(
    readonly id: string,
    action: string,
  ) {
    super(
      `key ${id} is managed in sluice.yaml (auth.keys) and cannot be ${action} through the admin API: ` +
        'change it in the file and reload (kill -HUP), or create a database key instead',
    )
  }
}

export function databaseKey<K extends KeyInfo>(info: K): K & { source: 'database'; readOnly: false } {
  return { ...info, source: 'database', readOnly: false }
}

export function configKeyInfo(entry: ConfigKeyEntry): ConfigKeyInfo {
  return {
    id: entry.id,
    name: entry.name ?? entry.id,
    tier: entry.tier,
    team: null,
    user: entry.user ?? null,
    limits: null,
    queue: null,
    budgets: null,
    metadata: null,
    status: entry.revoked ? 'revoked' : 'active',
    expiresAt: null,
    revokedAt: null,
    previousSecretValidUntil: null,
    createdAt: null,
    updatedAt: null,
    lastUsedAt: null,
    source: 'sluice.yaml',
    readOnly: true,
  }
}

/** The filters of a key list that a key of the file can match (it has no team, never expires). */
export interface ConfigKeyFilter {
  team?: string | undefined
  tier?: string | undefined
  user?: string | undefined
  status?: 'active' | 'revoked' | 'expired' | undefined
  search?: string | undefined
}

export function configKeyMatches(key: ConfigKeyInfo, f: ConfigKeyFilter): boolean {
  if (f.team !== undefined) return false
  if (f.tier !== undefined && key.tier !== f.tier) return false
  if (f.user !== undefined && key.user !== f.user) return false
  if (f.status !== undefined && key.status !== f.status) return false
  if (f.search !== undefined) {
    const term = f.search.toLowerCase()
    if (!key.id.toLowerCase().includes(term) && !key.name.toLowerCase().includes(term)) return false
  }
  return true
}
