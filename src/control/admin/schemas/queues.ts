import { z } from 'zod'

const ms = z.number().nullable()

const recentSchema = z
  .strictObject({
    admitted: z
      .number()
      .int()
      .describe('Requests admitted after waiting, in this instance, over the window.'),
    refused: z
      .number()
      .int()
      .describe('Requests refused when their wait ran out, in this instance, over the window.'),
    p50Ms: ms.describe('Wait time percentiles of the waits that ended in the window (null: none).'),
    p90Ms: ms,
    p99Ms: ms,
    maxMs: ms,
  })
  .meta({ id: 'RecentWaits', description: 'The waits this instance saw end over the recent window.' })

export const queuesSchema = z
  .strictObject({
    shared: z
      .boolean()
      .describe(
        'True when the limits are kept in Redis: `waiting`, `oldestWaitMs` and `capacities` are then every ' +
          "instance's (read from Redis); false: this process's own (MemoryStore). `recent` is always this instance's.",
      ),
    windowSeconds: z.number().describe('The window `recent` covers.'),
    tiers: z.array(
      z.strictObject({
        tier: z.string(),
        queue: z
          .strictObject({
            maxWaitMs: z.number(),
            maxQueued: z.number().int().nullable(),
            maxQueuedPerSubject: z.number().int().nullable(),
            weight: z.number().nullable(),
          })
          .nullable()
          .describe(
            "The tier's queue settings (null: its requests do not wait, unless a key's own settings say so).",
          ),
        waiting: z.number().int().describe('Requests waiting now on every capacity of the tier.'),
        oldestWaitMs: ms.describe('How long the oldest of them has waited (null: none waits).'),
        capacities: z
          .array(
            z.strictObject({
              subject: z
                .string()
                .describe(
                  'The subject whose capacity it is, as in its store keys (`h-…`: a hashed subject).',
                ),
              waiting: z.number().int(),
              oldestWaitMs: ms,
            }),
          )
          .describe('The capacities somebody waits on, the longest wait first (at most 1000 read).'),
        recent: recentSchema,
      }),
    ),
  })
  .meta({
    id: 'Queues',
    description:
      'Requests waiting in fair queues instead of a 429 (docs/queueing.md), per tier: now, and over a recent window.',
  })
