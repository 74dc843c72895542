import { z } from 'zod'
import { SERIES_STEPS } from '../../usage.js'
import { intQuery, isoTimeSchema, printable, timeQuerySchema } from './common.js'
import { subjectParamSchema, subjectStateSchema } from './system.js'

const STEPS = Object.keys(SERIES_STEPS) as [keyof typeof SERIES_STEPS, ...(keyof typeof SERIES_STEPS)[]]

export const seriesQuerySchema = z.strictObject({
  from: timeQuerySchema.describe('Start of the range, inclusive (required).'),
  to: timeQuerySchema.optional().describe('End of the range, exclusive (default: now).'),
  step: z
    .enum(STEPS, { error: `must be one of ${STEPS.join(', ')}` })
    .optional()
    .describe('Bucket size (default 1m); buckets start on multiples of it since the epoch (1d: 00:00 UTC).'),
  key: printable(256, 'key id').optional().describe('Only the rows of this key id.'),
  team: printable(256, 'team id').optional().describe('Only the rows of this team.'),
  user: printable(256, 'user id').optional().describe('Only the rows of this end user.'),
  model: printable(256, 'model').optional().describe('Only the rows of this model.'),
  tier: printable(256, 'tier').optional().describe('Only the rows of this tier.'),
})

const count = z.number().int()

export const seriesSchema = z
  .strictObject({
    from: isoTimeSchema,
    to: isoTimeSchema,
    step: z.enum(STEPS),
    stepMs: count.describe('The bucket size in milliseconds.'),
    points: z.array(
      z.strictObject({
        time: count.describe('Start of the bucket, epoch milliseconds.'),
        requests: count,
        served: count.describe('Outcome ok.'),
        refused: count.describe('Refused by the gateway before any upstream call (429, 401, 403, 503…).'),
        rateLimited: count.describe('Answered 429: a limit, a budget or a block.'),
        failed: count.describe('Reached the upstream and failed, or were aborted or cut.'),
        tokens: count.describe('Tokens charged to limits.'),
        usd: z.number().describe('Dollars charged.'),
      }),
    ),
  })
  .meta({
    id: 'UsageSeries',
    description: 'Usage per bucket over [from, to): every bucket, empty ones included (at most 1,500).',
  })

export const spendQuerySchema = z.strictObject({
  scope: z.enum(['key', 'team', 'user'], { error: 'must be key, team or user' }).describe('Whose spend.'),
  period: z
    .enum(['day', 'week', 'month'], { error: 'must be day, week or month' })
    .describe('The calendar period (UTC) holding now, as budgets count it.'),
  id: z
    .union([printable(256, 'id'), z.array(printable(256, 'id')).min(1).max(1000)], {
      error: 'must be one id, or the parameter repeated (at most 1,000 times)',
    })
    .optional()
    .describe('Only these owners (repeat the parameter: `id=a&id=b`); absent: every owner with spend.'),
  limit: intQuery(1, 10_000)
    .optional()
    .describe('Owners returned at most, the largest spend first (default 1,000).'),
})

export const spendSchema = z
  .strictObject({
    scope: z.enum(['key', 'team', 'user']),
    period: z.enum(['day', 'week', 'month']),
    start: isoTimeSchema.describe('Start of the period.'),
    end: isoTimeSchema.describe('End of the period (exclusive).'),
    items: z.array(
      z.strictObject({
        id: z.string(),
        usd: z.number().describe('Dollars charged to limits in the period.'),
        tokens: count.describe('Tokens charged to limits in the period.'),
        requests: count.describe('Requests charged to limits in the period.'),
      }),
    ),
  })
  .meta({
    id: 'Spend',
    description: 'What owners were charged in the current period: the part of a budget that is used.',
  })

export const latencySchema = z
  .strictObject({
    windowMs: count.describe('The recent window the figures cover.'),
    count: count.describe('Calls measured in the window.'),
    p50Ms: z.number().nullable(),
    p90Ms: z.number().nullable(),
    p99Ms: z.number().nullable(),
    maxMs: z.number().nullable(),
  })
  .meta({
    id: 'Latency',
    description:
      "The time the gateway adds to calls (its own work, not the upstream's), over a recent window, as " +
      'measured by the instance answering (null: no call in the window).',
  })

export const inspectManySchema = z
  .strictObject({
    subjects: z
      .array(subjectParamSchema)
      .min(1, 'must name at least one subject')
      .max(100, 'must name at most 100 subjects')
      .describe('Subjects as limits count them: `key:<id>`, `user:<id>`, `ip:<address>`.'),
  })
  .meta({
    id: 'InspectMany',
    description: 'Several subjects to inspect at once (the live bars of a page of keys).',
    examples: [{ subjects: ['key:3kq7mx2vda', 'user:alice'] }],
  })

export const subjectStatesSchema = z.strictObject({ items: z.array(subjectStateSchema) }).meta({
  id: 'SubjectStates',
  description: 'Each subject asked for, in order; `tiers` is empty for a subject no tier counts.',
})
