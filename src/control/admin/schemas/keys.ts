import { z } from 'zod'
import {
  budgetsSchema,
  configKeyIdSchema,
  graceSchema,
  isoTimeSchema,
  keyIdSchema,
  limitOverridesSchema,
  metadataSchema,
  offsetPage,
  printable,
  teamIdSchema,
  tierNameSchema,
  timeInputSchema,
  userIdSchema,
} from './common.js'

/** A key's queue settings as given (maxWait as a duration or milliseconds); KeyStore checks the values. */
const keyQueueInputSchema = z
  .strictObject({
    maxWait: z
      .union([z.number(), z.string()], { error: 'must be a duration such as "2s" or milliseconds' })
      .optional()
      .describe('Longest wait: "2s", "500ms" or milliseconds (at most 1h); 0 turns waiting off for the key.'),
    maxQueued: z.number().optional().describe('Most requests waiting on one capacity (whole number ≥ 1).'),
    maxQueuedPerSubject: z
      .number()
      .optional()
      .describe("Most of this key's requests waiting on one capacity (whole number ≥ 1)."),
    weight: z
      .number()
      .optional()
      .describe('Its share when several wait on one capacity (above 0, at most 1000).'),
  })
  .meta({
    id: 'KeyQueueInput',
    description:
      "Queue settings over the tier's `queue` (docs/queueing.md): each field given replaces the tier's; null: the tier's.",
    examples: [{ maxWait: '2s', weight: 4 }, { maxWait: 0 }],
  })

const keyQueueSchema = z
  .strictObject({
    maxWait: z.number().optional().describe('Longest wait in milliseconds (0: the key never waits).'),
    maxQueued: z.number().int().optional(),
    maxQueuedPerSubject: z.number().int().optional(),
    weight: z.number().optional(),
  })
  .meta({
    id: 'KeyQueue',
    description: "The key's queue settings over its tier's (maxWait in milliseconds).",
  })

const keyFields = {
  name: printable(200, 'name').describe('What the key is for, e.g. "ci-bot".'),
  tier: tierNameSchema,
  team: teamIdSchema.nullable().describe('The team that owns the key (it must exist); null for none.'),
  user: userIdSchema.nullable().describe('The end user the key belongs to (for tiers counted per user).'),
  limits: limitOverridesSchema.nullable(),
  queue: keyQueueInputSchema.nullable(),
  budgets: budgetsSchema.nullable(),
  expiresAt: timeInputSchema.nullable().describe('After this time the key is `expired` (401); null: never.'),
  metadata: metadataSchema.nullable(),
}

export const keyCreateSchema = z
  .strictObject({
    name: keyFields.name,
    tier: keyFields.tier,
    team: keyFields.team.optional(),
    user: keyFields.user.optional(),
    limits: keyFields.limits.optional(),
    queue: keyFields.queue.optional(),
    budgets: keyFields.budgets.optional(),
    expiresAt: keyFields.expiresAt.optional(),
    metadata: keyFields.metadata.optional(),
  })
  .meta({
    id: 'KeyCreate',
    description: 'A new virtual key. The answer holds the whole key: the only time it is shown.',
    examples: [
      { name: 'ci-bot', tier: 'service', team: 'research', budgets: { usd: { limit: 50, period: 'day' } } },
    ],
  })
export type KeyCreate = z.output<typeof keyCreateSchema>

export const keyUpdateSchema = z
  .strictObject({
    name: keyFields.name.optional(),
    tier: keyFields.tier.optional(),
    team: keyFields.team.optional(),
    user: keyFields.user.optional(),
    limits: keyFields.limits.optional(),
    queue: keyFields.queue.optional(),
    budgets: keyFields.budgets.optional(),
    expiresAt: keyFields.expiresAt.optional(),
    metadata: keyFields.metadata.optional(),
  })
  .meta({
    id: 'KeyUpdate',
    description: 'Fields to change; absent fields stay as they are, null clears an optional one.',
    examples: [{ tier: 'premium', budgets: { usd: { limit: 100, period: 'month' } } }],
  })
export type KeyUpdate = z.output<typeof keyUpdateSchema>

export const keyRotateSchema = z.strictObject({ grace: graceSchema.optional() }).meta({
  id: 'KeyRotate',
  description:
    'Issues a new secret. The old one keeps working for `grace` (default 0: it stops at once); ' +
    'rotating again during a grace ends the earlier grace.',
  examples: [{ grace: '1h' }],
})

export const keyListQuerySchema = z.strictObject({
  team: teamIdSchema.optional().describe('Only the keys of this team.'),
  tier: tierNameSchema.optional().describe('Only the keys of this tier.'),
  user: userIdSchema.optional().describe('Only the keys of this end user.'),
  status: z
    .enum(['active', 'revoked', 'expired'], { error: 'must be active, revoked or expired' })
    .optional()
    .describe('Only the keys in this state.'),
  search: printable(200, 'search term').optional().describe('Part of the name or the id, case-insensitive.'),
  source: z
    .enum(['database', 'sluice.yaml'], { error: 'must be database or sluice.yaml' })
    .optional()
    .describe("Only the database's keys, or only sluice.yaml's (read-only); default both."),
  sort: z
    .enum(['created', 'name', 'lastUsed', 'expires'], { error: 'must be created, name, lastUsed or expires' })
    .optional()
    .describe('Sort field (default created).'),
  order: z
    .enum(['asc', 'desc'], { error: 'must be asc or desc' })
    .optional()
    .describe('Sort order (default desc; asc for name).'),
  ...offsetPage,
})
export type KeyListQuery = z.output<typeof keyListQuerySchema>

export const keySchema = z
  .strictObject({
    id: keyIdSchema,
    name: z.string(),
    tier: z.string(),
    team: z.string().nullable(),
    user: z.string().nullable(),
    limits: limitOverridesSchema.nullable(),
    queue: keyQueueSchema.nullable(),
    budgets: budgetsSchema.nullable(),
    metadata: metadataSchema.nullable(),
    status: z.enum(['active', 'revoked', 'expired']).describe('`expired` is derived from expiresAt.'),
    expiresAt: isoTimeSchema.nullable(),
    revokedAt: isoTimeSchema.nullable(),
    previousSecretValidUntil: isoTimeSchema
      .nullable()
      .describe('Until when the secret replaced by the last rotation still works.'),
    createdAt: isoTimeSchema,
    updatedAt: isoTimeSchema,
    lastUsedAt: isoTimeSchema.nullable().describe('Recorded every few seconds, not to the millisecond.'),
    source: z.literal('database').describe('Where the key is managed: the database (this API).'),
    readOnly: z.literal(false),
  })
  .meta({ id: 'Key', description: 'A virtual key as the API shows it: never its secret nor any hash.' })

export const configKeySchema = z
  .strictObject({
    id: configKeyIdSchema,
    name: z.string().describe('Its `name` in the file, else its id.'),
    tier: z.string(),
    team: z.null(),
    user: z.string().nullable(),
    limits: z.null().describe('Its limit overrides, if any, are in the file.'),
    queue: z.null(),
    budgets: z.null(),
    metadata: z.null(),
    status: z.enum(['active', 'revoked']),
    expiresAt: z.null(),
    revokedAt: z.null(),
    previousSecretValidUntil: z.null(),
    createdAt: z.null(),
    updatedAt: z.null(),
    lastUsedAt: z.null(),
    source: z.literal('sluice.yaml').describe('Where the key is managed: sluice.yaml (`auth.keys`).'),
    readOnly: z
      .literal(true)
      .describe('Update, revoke and rotate answer 409 `read_only_key`: change it in the file and reload.'),
  })
  .meta({
    id: 'ConfigKey',
    description:
      "A key of sluice.yaml, listed beside the database's: read-only, with what the file says of it.",
  })

export const listedKeySchema = z
  .discriminatedUnion('source', [keySchema, configKeySchema])
  .meta({ id: 'ListedKey', description: 'A key of the database or of sluice.yaml (`source`).' })

export const issuedKeySchema = keySchema
  .extend({
    key: z
      .string()
      .describe('The whole key, `sk-sluice-<id>-<secret>`: shown here once, never again. Store it now.'),
  })
  .meta({ id: 'IssuedKey', description: 'A key just created or rotated, with its secret (this one time).' })

export const keyPageSchema = z
  .strictObject({
    items: z.array(listedKeySchema).describe("The database's keys first, then sluice.yaml's."),
    total: z.number().int().describe('Keys matching the filters (both sources), over all pages.'),
    limit: z.number().int(),
    offset: z.number().int(),
  })
  .meta({ id: 'KeyPage', description: 'One page of keys.' })
