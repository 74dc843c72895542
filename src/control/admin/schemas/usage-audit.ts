import { z } from 'zod'
import type { AuditAction } from '../../audit.js'
import { cursorPage, intQuery, isoTimeSchema, printable, timeQuerySchema } from './common.js'

const ledgerFilter = {
  from: timeQuerySchema.optional().describe('Start of the range, inclusive.'),
  to: timeQuerySchema.optional().describe('End of the range, exclusive.'),
  key: printable(256, 'key id').optional().describe('Only the rows of this key id.'),
  team: printable(256, 'team id').optional().describe('Only the rows of this team.'),
  user: printable(256, 'user id').optional().describe('Only the rows of this end user.'),
  model: printable(256, 'model').optional().describe('Only the rows of this model.'),
  tier: printable(256, 'tier').optional().describe('Only the rows of this tier.'),
  status: intQuery(100, 599).optional().describe('Only the rows answered with this HTTP status.'),
  outcome: z
    .string()
    .regex(/^[a-z_]{1,32}$/, 'must be an outcome such as ok, rate_limited, upstream_error')
    .optional()
    .describe(
      'ok, rate_limited, blocked, unauthenticated, denied, unavailable, invalid, upstream_error, aborted, cut.',
    ),
}

export const USAGE_GROUPS = [
  'key',
  'team',
  'user',
  'model',
  'tier',
  'day',
  'status',
  'outcome',
  'route',
  'upstream',
  'reason',
] as const

export const usageQuerySchema = z.strictObject({
  ...ledgerFilter,
  groupBy: z
    .enum(USAGE_GROUPS, { error: `must be one of ${USAGE_GROUPS.join(', ')}` })
    .optional()
    .describe(
      'Totals per value of this field (`day`: per calendar day; `reason`: the limit that refused, with status=429 the share of 429s by limit); absent: one grand total.',
    ),
  utcOffsetMinutes: intQuery(-720, 840)
    .optional()
    .describe('For groupBy=day: the fixed UTC offset whose midnights split days (default 0).'),
  sort: z
    .enum(['group', 'requests', 'tokens', 'usd'], { error: 'must be group, requests, tokens or usd' })
    .optional()
    .describe('By the group value (default), or the largest first.'),
  limit: intQuery(1, 10_000).optional().describe('Groups returned at most (default 1,000).'),
})

export const ledgerQuerySchema = z.strictObject({ ...ledgerFilter, ...cursorPage })

// Every action the audit log writes, so that each can be filtered on (`satisfies` keeps the two in step).
const AUDIT_ACTIONS = [
  'key.create',
  'key.update',
  'key.revoke',
  'key.rotate',
  'team.create',
  'team.update',
  'team.delete',
  'user.set',
  'user.delete',
  'subject.unblock',
  'detection.raise',
  'detection.clear',
  'detection.allow',
] as const satisfies readonly AuditAction[]

export const auditQuerySchema = z.strictObject({
  actor: printable(200, 'actor').optional().describe('Only the changes of this actor, e.g. admin-api:alice.'),
  action: z
    .enum(AUDIT_ACTIONS, { error: `must be one of ${AUDIT_ACTIONS.join(', ')}` })
    .optional()
    .describe('Only this kind of change.'),
  targetKind: z
    .enum(['key', 'team', 'user', 'subject'], { error: 'must be key, team, user or subject' })
    .optional(),
  targetId: printable(256, 'id').optional().describe('Only the changes of this key, team, user or subject.'),
  from: timeQuerySchema.optional().describe('Start of the range, inclusive.'),
  to: timeQuerySchema.optional().describe('End of the range, exclusive.'),
  ...cursorPage,
})

const count = z.number().int()
const usd = z.number()

export const usageTotalsSchema = z
  .strictObject({
    group: z
      .union([z.string(), z.number(), z.null()])
      .describe('The group value (a key id, a model, 2026-11-27 for a day…); null: rows without one.'),
    requests: count,
    served: count.describe('Outcome ok.'),
    refused: count.describe('Refused by the gateway before any upstream call.'),
    failed: count.describe('Reached the upstream and failed, or were aborted or cut.'),
    promptTokens: count,
    cachedTokens: count.describe("Of the prompt: read from the provider's cache."),
    cacheWriteTokens: count.describe('Of the prompt: written to the 5-minute cache.'),
    cacheWrite1hTokens: count.describe('Of the prompt: written to the 1-hour cache.'),
    completionTokens: count,
    reasoningTokens: count.describe('Of the completion: reasoning tokens.'),
    tokens: count.describe('Tokens charged to limits.'),
    usd: usd.describe('Dollars charged.'),
    usdInput: usd.describe('Of usd: input neither read from nor written to a cache.'),
    usdCached: usd.describe('Of usd: cache reads.'),
    usdCacheWrite: usd.describe('Of usd: cache writes (5-minute and 1-hour).'),
    usdOutput: usd.describe('Of usd: output, reasoning included.'),
    queued: count.describe('Requests that waited in a queue (docs/queueing.md).'),
    queueMs: count.describe('Their waits summed, in milliseconds (average: queueMs / queued).'),
  })
  .meta({ id: 'UsageTotals', description: 'Totals of one group.' })

export const usageReportSchema = z
  .strictObject({
    groupBy: z.string().nullable(),
    from: isoTimeSchema.nullable(),
    to: isoTimeSchema.nullable(),
    items: z.array(usageTotalsSchema),
  })
  .meta({ id: 'UsageReport', description: 'Usage totals over a time range, per group.' })

const text = z.string().nullable()

export const ledgerRowSchema = z
  .strictObject({
    id: count,
    time: isoTimeSchema,
    requestId: text,
    keyId: text.describe("The key's public id (never the key)."),
    team: text,
    user: text,
    tier: text,
    subject: text,
    model: text,
    upstream: text,
    deployment: text,
    route: text,
    stream: z.boolean(),
    status: count.describe('The HTTP status the client got.'),
    outcome: z.string(),
    reason: text.describe('Why: the limit that refused, the upstream error…'),
    limited: z.boolean().describe('Charged to limits (false: allow list, shadow mode).'),
    source: text,
    promptTokens: count,
    cachedTokens: count.describe("Of the prompt: read from the provider's cache."),
    cacheWriteTokens: count.describe('Of the prompt: written to the 5-minute cache.'),
    cacheWrite1hTokens: count.describe('Of the prompt: written to the 1-hour cache.'),
    completionTokens: count,
    reasoningTokens: count.describe('Of the completion: reasoning tokens.'),
    tokens: count,
    usd,
    usdInput: usd.describe('Of usd: input neither read from nor written to a cache.'),
    usdCached: usd.describe('Of usd: cache reads.'),
    usdCacheWrite: usd.describe('Of usd: cache writes (5-minute and 1-hour).'),
    usdOutput: usd.describe('Of usd: output, reasoning included.'),
    latencyMs: z.number(),
    fallback: text,
    queueMs: z
      .number()
      .int()
      .nullable()
      .describe('How long the request waited in a queue (docs/queueing.md); null when it did not wait.'),
  })
  .meta({ id: 'LedgerRow', description: 'One request, as the gateway recorded it.' })

export const ledgerPageSchema = z
  .strictObject({
    items: z.array(ledgerRowSchema),
    next: z.string().optional().describe('Pass as `cursor` for the next (older) page; absent on the last.'),
  })
  .meta({ id: 'LedgerPage', description: 'Ledger rows, newest first.' })

export const auditEntrySchema = z
  .strictObject({
    id: count,
    time: isoTimeSchema,
    actor: z.string().describe('Who: `admin-api:<name>`, `cli:<user>`…'),
    action: z.string(),
    targetKind: z.string(),
    targetId: z.string(),
    before: z.unknown().describe('The public record before the change (null for a creation).'),
    after: z.unknown().describe('The public record after the change (null for a deletion).'),
  })
  .meta({ id: 'AuditEntry', description: 'One admin change. Secrets and their hashes are never part of it.' })

export const auditPageSchema = z
  .strictObject({
    items: z.array(auditEntrySchema),
    next: z.string().optional().describe('Pass as `cursor` for the next (older) page; absent on the last.'),
  })
  .meta({ id: 'AuditPage', description: 'Audit entries, newest first.' })
