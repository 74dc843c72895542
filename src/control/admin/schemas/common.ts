/**
 * The building blocks of the admin API's schemas. One set of zod schemas validates every input (the
 * HTTP API and the CLI go through the same service) and generates the OpenAPI document, so the two
 * cannot drift. Schemas with an `id` in their meta become `components.schemas` in the document.
 */
import { z } from 'zod'
import { limitSchema } from '../../../gateway/config/schema.js'
import { parseDuration } from '../../../gateway/config/values.js'
import { MAX_ROTATION_GRACE_MS } from '../../keys.js'

/** Printable text: no control characters (they break logs, terminals and tables). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point.
export const PRINTABLE = /^[^\u0000-\u001f\u007f]*$/

export function printable(max: number, what = 'text') {
  return z
    .string()
    .min(1, `must be a non-empty ${what}`)
    .max(max, `must be at most ${max} characters`)
    .regex(PRINTABLE, 'must not contain control characters')
}

export const keyIdSchema = z
  .string()
  .regex(/^[a-z2-7]{10}$/, 'must be a key id: 10 characters a-z, 2-7')
  .describe("The key's public id (`sk-sluice-<id>-…`): what logs, the ledger and metrics name.")

export const configKeyIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be a key id: 1-64 letters, digits, "_", "-" or "."')
  .describe("A key of sluice.yaml's id (`auth.keys[].id`, else the first 16 hex digits of its hash).")

/** A key's id in a URL: a database key's, or a key of sluice.yaml's. */
export const keyRefSchema = z
  .string()
  .regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be a key id')
  .describe("A key's id: a database key's (10 characters a-z, 2-7), or the id of a key of sluice.yaml.")

export const teamIdSchema = z
  .string()
  .regex(
    /^[a-z0-9][a-z0-9_.-]{0,63}$/,
    'must be 1-64 lowercase letters, digits, "_", "." or "-", starting with a letter or digit',
  )
  .describe('A team id: a lowercase slug.')

export const userIdSchema = printable(256, 'user id').describe(
  'An end user, as requests name them (e.g. X-User-ID from a trusted proxy).',
)

export const tierNameSchema = printable(64, 'tier name').describe(
  'A tier configured in sluice.yaml (`tiers`); unknown tiers are refused.',
)

const budgetLimit = (unit: 'usd' | 'tokens') =>
  z.strictObject({
    limit:
      unit === 'usd'
        ? z.number().positive('must be a positive number').finite().describe('US dollars per period.')
        : z
            .number()
            .int('must be a whole number of tokens')
            .positive('must be positive')
            .describe('Tokens per period.'),
    period: z
      .enum(['day', 'week', 'month'], { error: 'must be one of day, week, month' })
      .describe('A calendar period (UTC): a day, an ISO week (from Monday) or a month.'),
  })

export const budgetsSchema = z
  .strictObject({ usd: budgetLimit('usd').optional(), tokens: budgetLimit('tokens').optional() })
  .meta({
    id: 'Budgets',
    description: 'Spending caps over calendar periods, in dollars, tokens or both.',
    examples: [{ usd: { limit: 50, period: 'day' } }],
  })

/** The name of a limit, as under a tier's `limits` in sluice.yaml. */
const limitNameSchema = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1-64 letters, digits, "_" or "-"')

/**
 * Limit overrides: the shape of a tier's `limits` in sluice.yaml, checked with the config's own
 * schema. Stored and returned as written (`window: "1h"` stays "1h").
 */
export const limitOverridesSchema = z.record(limitNameSchema, limitSchema.nullable()).meta({
  id: 'LimitOverrides',
  description:
    "Limits replacing or adding to the tier's, by name, exactly as under `tiers.<tier>.limits` in " +
    "sluice.yaml; `null` removes one of the tier's limits.",
  examples: [{ tokens: { kind: 'tokenBucket', unit: 'tokens', capacity: 200000, per: '1h' } }],
})

export const metadataSchema = z
  .record(z.string(), z.unknown())
  .meta({ id: 'Metadata', description: 'Free-form JSON object (at most 8 KB), kept with the record.' })

/** A time as ISO 8601 (`2026-12-01T00:00:00Z`, `2026-12-01`) or epoch milliseconds. */
export const timeInputSchema = z
  .union(
    [
      z.iso.datetime({ offset: true }),
      z.iso.date(),
      z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
    ],
    { error: 'must be an ISO 8601 time (2026-12-01T00:00:00Z), a date (2026-12-01) or epoch milliseconds' },
  )
  .describe('ISO 8601 time, date (midnight UTC) or epoch milliseconds.')

/** The same in a query string, where every value arrives as text. */
export const timeQuerySchema = z
  .union(
    [
      z.iso.datetime({ offset: true }),
      z.iso.date(),
      z
        .string()
        .regex(/^\d{1,16}$/)
        .transform(Number),
      z.number().int().nonnegative(),
    ],
    { error: 'must be an ISO 8601 time (2026-12-01T00:00:00Z), a date (2026-12-01) or epoch milliseconds' },
  )
  .describe('ISO 8601 time, date (midnight UTC) or epoch milliseconds.')

/** Whole numbers in a query string (`?limit=50`) or from code. */
export const intQuery = (min: number, max: number) =>
  z.coerce
    .number({ error: `must be a whole number from ${min} to ${max}` })
    .int(`must be a whole number from ${min} to ${max}`)
    .min(min, `must be a whole number from ${min} to ${max}`)
    .max(max, `must be a whole number from ${min} to ${max}`)

/** `true`/`false` in a query string (zod's coerce would read "false" as true). */
export const boolQuery = z
  .union([z.boolean(), z.enum(['true', 'false']).transform((v) => v === 'true')], {
    error: 'must be true or false',
  })
  .describe('true or false')

/** The rotation grace: milliseconds or a duration such as "1h" (30 days at most). */
export const graceSchema = z
  .union([z.number(), z.string()], { error: 'must be a duration such as "1h" or milliseconds' })
  .transform((value, ctx) => {
    const ms = parseDuration(value)
    if (ms === undefined || !Number.isSafeInteger(ms) || ms < 0 || ms > MAX_ROTATION_GRACE_MS) {
      ctx.addIssue({
        code: 'custom',
        message: 'must be a duration from 0 to 30 days, such as "15m", "1h", "7d", or milliseconds',
      })
      return z.NEVER
    }
    return ms
  })
  .describe(
    'How long the old secret keeps working: "15m", "1h", "7d" or milliseconds (default 0, at most 30 days).',
  )

/** Pages by offset (keys, teams, users). */
export const offsetPage = {
  limit: intQuery(1, 1000).optional().describe('Items per page (1-1000, default 100).'),
  offset: intQuery(0, Number.MAX_SAFE_INTEGER).optional().describe('Items to skip (default 0).'),
}

/** Pages by keyset cursor (ledger, audit): stable while rows are added. */
export const cursorPage = {
  limit: intQuery(1, 1000).optional().describe('Items per page (1-1000, default 100), newest first.'),
  cursor: z.string().min(1).max(200).optional().describe('The `next` of the previous page.'),
}

export const isoTimeSchema = z.string().describe('ISO 8601 time (UTC).')

export const errorSchema = z
  .strictObject({
    error: z.strictObject({
      message: z.string(),
      type: z.string().describe('invalid_request_error, authentication_error, not_found_error, …'),
      param: z.string().nullable().describe('The field at fault, e.g. `budgets.usd.limit`.'),
      code: z.string().nullable(),
    }),
  })
  .meta({
    id: 'Error',
    description: 'Every answer that is not a success.',
    examples: [
      {
        error: {
          message: 'budgets.usd.limit must be a positive number, got -5',
          type: 'invalid_request_error',
          param: 'budgets.usd.limit',
          code: 'invalid_value',
        },
      },
    ],
  })
