import { z } from 'zod'
import { printable } from './common.js'

export const subjectParamSchema = printable(300, 'subject')
  .regex(/^(key|user|ip):./, 'must be a subject such as key:<id>, user:<id> or ip:<address>')
  .describe('A subject as limits count it: `key:<id>`, `user:<id>` or `ip:<address or /64>`.')

const limitStatusSchema = z.strictObject({
  name: z.string(),
  unit: z.string(),
  kind: z.string(),
  limit: z.number(),
  remaining: z.number(),
  resetMs: z.number().describe('Milliseconds until the limit is full again.'),
  windowSeconds: z.number(),
})

export const subjectStateSchema = z
  .strictObject({
    subject: z.string(),
    tiers: z.array(
      z.strictObject({
        tier: z.string(),
        allowed: z
          .boolean()
          .describe(
            "A zero-cost look: false while blocked or a limit is in debt; each limit's remaining says more.",
          ),
        blocked: z.boolean().describe('Blocked for repeated denials.'),
        retryAfterMs: z
          .number()
          .nullable()
          .describe('0 when allowed; null when a request can never pass (a cost above a limit).'),
        deniedBy: z.string().nullable(),
        limits: z.array(limitStatusSchema),
      }),
    ),
  })
  .meta({
    id: 'SubjectState',
    description: "A subject's live limits in every tier that counts its kind, read without charging it.",
  })

export const subjectUnblockedSchema = z
  .strictObject({ subject: z.string(), unblocked: z.literal(true) })
  .meta({ id: 'SubjectUnblocked', description: 'The block is lifted in every tier; strikes are forgotten.' })

export const statusSchema = z
  .strictObject({
    version: z.string().describe('The sluice version serving this API.'),
    time: z.string().describe('The server time (ISO 8601).'),
    tiers: z
      .array(z.string())
      .nullable()
      .describe('The configured tier names a key may take (null when the server knows no list).'),
    database: z.strictObject({
      dialect: z.enum(['sqlite', 'postgres']),
      label: z.string().describe('Where the database is (a password is masked).'),
      reachable: z.boolean(),
      latencyMs: z.number().nullable().describe('Time of a trivial query (null when unreachable).'),
      error: z.string().nullable(),
      schema: z.string().nullable().describe('The latest migration applied.'),
      changeFeed: z.string().describe('idle, up, down or closed.'),
      ledger: z.strictObject({
        buffered: z.number().int(),
        written: z.number().int(),
        dropped: z.number().int(),
        failedBatches: z.number().int(),
        state: z.string(),
      }),
    }),
    store: z
      .record(z.string(), z.unknown())
      .nullable()
      .describe("The limiter store's state, as the gateway reports it (null when not reported)."),
  })
  .meta({ id: 'Status', description: 'The state of the control plane and of the gateway serving it.' })

export const openApiDocumentSchema = z
  .record(z.string(), z.unknown())
  .meta({ id: 'OpenApiDocument', description: 'This document (OpenAPI 3.1).' })
