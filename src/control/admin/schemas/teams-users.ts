import { z } from 'zod'
import {
  boolQuery,
  budgetsSchema,
  isoTimeSchema,
  keyIdSchema,
  limitOverridesSchema,
  metadataSchema,
  offsetPage,
  printable,
  teamIdSchema,
} from './common.js'

export const teamCreateSchema = z
  .strictObject({
    id: teamIdSchema,
    name: printable(200, 'name').optional().describe('Defaults to the id.'),
    limits: limitOverridesSchema.nullable().optional(),
    budgets: budgetsSchema.nullable().optional(),
    metadata: metadataSchema.nullable().optional(),
  })
  .meta({
    id: 'TeamCreate',
    description: 'A team: its limits and budgets apply to all of its keys together.',
    examples: [{ id: 'research', name: 'Research', budgets: { usd: { limit: 500, period: 'month' } } }],
  })

export const teamUpdateSchema = z
  .strictObject({
    name: printable(200, 'name').optional(),
    limits: limitOverridesSchema.nullable().optional(),
    budgets: budgetsSchema.nullable().optional(),
    metadata: metadataSchema.nullable().optional(),
  })
  .meta({
    id: 'TeamUpdate',
    description: 'Fields to change; absent fields stay as they are, null clears an optional one.',
    examples: [{ budgets: { usd: { limit: 1000, period: 'month' } } }],
  })

export const teamListQuerySchema = z.strictObject({
  search: printable(200, 'search term').optional().describe('Part of the id or name, case-insensitive.'),
  ...offsetPage,
})

export const teamDeleteQuerySchema = z.strictObject({
  force: boolQuery
    .optional()
    .describe('Delete even if keys belong to the team: they are detached and keep working without it.'),
})

export const teamSchema = z
  .strictObject({
    id: z.string(),
    name: z.string(),
    limits: limitOverridesSchema.nullable(),
    budgets: budgetsSchema.nullable(),
    metadata: metadataSchema.nullable(),
    createdAt: isoTimeSchema,
    updatedAt: isoTimeSchema,
  })
  .meta({ id: 'Team', description: 'A team.' })

export const teamPageSchema = z
  .strictObject({
    items: z.array(teamSchema),
    total: z.number().int(),
    limit: z.number().int(),
    offset: z.number().int(),
  })
  .meta({ id: 'TeamPage', description: 'One page of teams, by id.' })

export const teamDeletedSchema = z
  .strictObject({
    id: z.string(),
    deleted: z.literal(true),
    detachedKeys: z.array(keyIdSchema).describe('Keys that belonged to the team (forced delete only).'),
  })
  .meta({ id: 'TeamDeleted', description: 'What deleting a team did.' })

export const userSetSchema = z
  .strictObject({
    limits: limitOverridesSchema.nullable().optional(),
    budgets: budgetsSchema.nullable().optional(),
    metadata: metadataSchema.nullable().optional(),
  })
  .meta({
    id: 'UserSet',
    description:
      "An end user's own limits and budgets (over their tier's). Creates the record or changes it: " +
      'absent fields stay as they are, null clears one.',
    examples: [{ budgets: { usd: { limit: 5, period: 'day' } } }],
  })

export const userListQuerySchema = z.strictObject({
  search: printable(200, 'search term').optional().describe('Part of the id, case-insensitive.'),
  ...offsetPage,
})

export const userSchema = z
  .strictObject({
    id: z.string(),
    limits: limitOverridesSchema.nullable(),
    budgets: budgetsSchema.nullable(),
    metadata: metadataSchema.nullable(),
    createdAt: isoTimeSchema,
    updatedAt: isoTimeSchema,
  })
  .meta({
    id: 'User',
    description: "An end user's overrides. Users without a record are served with their tier's limits.",
  })

export const userPageSchema = z
  .strictObject({
    items: z.array(userSchema),
    total: z.number().int(),
    limit: z.number().int(),
    offset: z.number().int(),
  })
  .meta({ id: 'UserPage', description: 'One page of end users with overrides, by id.' })

export const userDeletedSchema = z
  .strictObject({ id: z.string(), deleted: z.literal(true) })
  .meta({ id: 'UserDeleted', description: "The user's overrides are gone; the tier's limits apply again." })
