import type { Generated } from 'kysely'

/**
 * The tables as Kysely sees them. One schema for SQLite and PostgreSQL: times are integer
 * milliseconds since the epoch (BIGINT on PostgreSQL), JSON is TEXT, booleans are 0/1 integers,
 * so that both dialects store and return the same values.
 */
export interface Tables {
  teams: TeamsTable
  keys: KeysTable
  users: UsersTable
  audit: AuditTable
  changes: ChangesTable
  ledger: LedgerTable
}

export interface TeamsTable {
  id: string
  name: string
  limits: string | null
  budgets: string | null
  metadata: string | null
  created_at: number
  updated_at: number
}

export interface KeysTable {
  /** The public id (the `<id>` in `sk-sluice-<id>-<secret>`). */
  id: string
  name: string
  tier: string
  team_id: string | null
  user_id: string | null
  /** SHA-256 of the secret, 64 hex digits. */
  secret_hash: string
  /** The secret replaced by the last rotation, valid until previous_expires_at. */
  previous_secret_hash: string | null
  previous_expires_at: number | null
  limits: string | null
  /** Queue settings over the tier's, JSON (since migration 0004); null: the tier's. */
  queue: string | null
  budgets: string | null
  metadata: string | null
  expires_at: number | null
  revoked_at: number | null
  created_at: number
  updated_at: number
  last_used_at: number | null
}

export interface UsersTable {
  id: string
  limits: string | null
  budgets: string | null
  metadata: string | null
  created_at: number
  updated_at: number
}

export interface AuditTable {
  id: Generated<number>
  time: number
  actor: string
  action: string
  target_kind: string
  target_id: string
  before: string | null
  after: string | null
}

export interface ChangesTable {
  seq: Generated<number>
  time: number
  kind: string
  entity_id: string
}

export interface LedgerTable {
  id: Generated<number>
  time: number
  request_id: string | null
  key_id: string | null
  team_id: string | null
  user_id: string | null
  tier: string | null
  subject: string | null
  model: string | null
  upstream: string | null
  deployment: string | null
  route: string | null
  stream: number
  status: number
  outcome: string
  reason: string | null
  limited: number
  source: string | null
  prompt_tokens: number
  cached_tokens: number
  /** Written to the 5-minute cache. */
  cache_write_tokens: number
  /** Written to the 1-hour cache (since migration 0003). */
  cache_write_1h_tokens: number
  completion_tokens: number
  reasoning_tokens: number
  tokens: number
  usd: number
  usd_input: number
  usd_cached: number
  usd_cache_write: number
  usd_output: number
  latency_ms: number
  fallback: string | null
  /** How long the request waited in a queue (since migration 0004); null when it did not wait. */
  queue_ms: number | null
}
