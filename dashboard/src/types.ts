/** What /admin/v1 answers (the shapes of its OpenAPI document, for the parts the dashboard reads). */

export type Query = Record<string, string | number | boolean | undefined | null | (string | number)[]>

export interface Budget {
  limit: number
  period: 'day' | 'week' | 'month'
}
export interface Budgets {
  usd?: Budget
  tokens?: Budget
}
export type LimitOverrides = Record<string, Record<string, unknown> | null>

export interface Key {
  id: string
  name: string
  tier: string
  team: string | null
  user: string | null
  limits: LimitOverrides | null
  budgets: Budgets | null
  metadata: Record<string, unknown> | null
  status: 'active' | 'revoked' | 'expired'
  expiresAt: string | null
  revokedAt: string | null
  previousSecretValidUntil: string | null
  /** Null for a key of sluice.yaml. */
  createdAt: string | null
  updatedAt: string | null
  lastUsedAt: string | null
  /** Where the key is managed: a key of sluice.yaml is read-only here (change it in the file). */
  source: 'database' | 'sluice.yaml'
  readOnly: boolean
}
export interface IssuedKey extends Key {
  key: string
}

export interface Team {
  id: string
  name: string
  limits: LimitOverrides | null
  budgets: Budgets | null
  metadata: Record<string, unknown> | null
  createdAt: string
  updatedAt: string
}

export interface Page<T> {
  items: T[]
  total: number
  limit: number
  offset: number
}

export interface UsageTotals {
  group: string | number | null
  requests: number
  served: number
  refused: number
  failed: number
  tokens: number
  usd: number
}
export interface UsageReport {
  items: UsageTotals[]
}

export interface SeriesPoint {
  time: number
  requests: number
  served: number
  refused: number
  rateLimited: number
  failed: number
  tokens: number
  usd: number
}
export interface Series {
  from: string
  to: string
  step: string
  stepMs: number
  points: SeriesPoint[]
}

export interface Spend {
  scope: string
  period: 'day' | 'week' | 'month'
  start: string
  end: string
  items: { id: string; usd: number; tokens: number; requests: number }[]
}

export interface LimitState {
  name: string
  unit: string
  kind: string
  limit: number
  remaining: number
  resetMs: number
  windowSeconds: number
}
export interface TierState {
  tier: string
  allowed: boolean
  blocked: boolean
  retryAfterMs: number | null
  deniedBy: string | null
  limits: LimitState[]
}
export interface SubjectState {
  subject: string
  tiers: TierState[]
}

export interface LedgerRow {
  id: number
  time: string
  keyId: string | null
  team: string | null
  user: string | null
  tier: string | null
  subject: string | null
  model: string | null
  route: string | null
  status: number
  outcome: string
  reason: string | null
  tokens: number
  usd: number
  latencyMs: number
}
export interface LedgerPage {
  items: LedgerRow[]
  next?: string
}

export interface AdminEvent {
  id: string
  time: string
  type: 'alert' | 'block' | 'budget' | 'store' | 'webhook' | 'detection'
  severity: 'info' | 'warning' | 'critical'
  subject: string | null
  tier: string | null
  message: string
  data: Record<string, unknown>
}
export interface EventPage {
  stream: string
  items: AdminEvent[]
  next?: string
}

export interface Latency {
  windowMs: number
  count: number
  p50Ms: number | null
  p90Ms: number | null
  p99Ms: number | null
  maxMs: number | null
}

export interface Status {
  version: string
  time: string
  tiers: string[] | null
  database: {
    dialect: string
    label: string
    reachable: boolean
    latencyMs: number | null
    error: string | null
    schema: string | null
    changeFeed: string
    ledger: { buffered: number; written: number; dropped: number; failedBatches: number; state: string }
  }
  store: Record<string, unknown> | null
}

/**
 * A detection as /admin/v1/detections lists it. Rendered field by field without knowing the
 * detector: a new kind shows with no change here.
 */
export interface Detection {
  detector: string
  level: string
  subject: string
  tier?: string | null
  shadow?: boolean
  value?: number
  threshold?: number
  addresses?: string[]
  message?: string
  at: string
  state: 'active' | 'cleared' | 'expired'
  until: string | null
  cleared: { at: string; by: string } | null
  allowListed: boolean | string
}
export interface DetectionList {
  items: Detection[]
  total: number
}
