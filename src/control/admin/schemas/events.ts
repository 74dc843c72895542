import { z } from 'zod'
import { ADMIN_EVENT_SEVERITIES, ADMIN_EVENT_TYPES } from '../events.js'
import { intQuery, isoTimeSchema, printable } from './common.js'

export const eventSchema = z
  .strictObject({
    id: z.string().describe('`<stream>-<seq>`: increasing within one gateway process; the SSE `id`.'),
    time: isoTimeSchema,
    type: z
      .enum(ADMIN_EVENT_TYPES)
      .describe('alert (80 % of a limit), block, budget (spent), store (down / up), webhook (a delivery).'),
    severity: z.enum(ADMIN_EVENT_SEVERITIES),
    subject: z
      .string()
      .nullable()
      .describe('The subject it is about: `key:<id>`, `user:<id>`, `ip:<address>`.'),
    tier: z.string().nullable(),
    message: z.string().describe('One sentence for people.'),
    data: z
      .record(z.string(), z.unknown())
      .describe(
        'Details: the limit and share used (alert), the block duration (block), the state (store); for ' +
          'webhook, `status` (delivered / failed), `target` (the origin only), `attempts`, `error` and ' +
          '`ref`, the id of the event it delivered.',
      ),
  })
  .meta({ id: 'AdminEvent', description: 'Something an operator should know about, as it happened.' })

export const eventQuerySchema = z.strictObject({
  type: z
    .enum(ADMIN_EVENT_TYPES, { error: `must be one of ${ADMIN_EVENT_TYPES.join(', ')}` })
    .optional()
    .describe('Only events of this type.'),
  subject: printable(300, 'subject').optional().describe('Only events about this subject.'),
  limit: intQuery(1, 1000).optional().describe('Items per page (1-1000, default 100), newest first.'),
  cursor: z
    .string()
    .regex(/^\d{1,15}$/, 'must be the `next` of a previous page')
    .optional()
    .describe('The `next` of the previous page.'),
})

export const eventPageSchema = z
  .strictObject({
    stream: z
      .string()
      .describe("This process's stream name: ids of another stream come from before a restart."),
    items: z.array(eventSchema),
    next: z.string().optional().describe('Pass as `cursor` for the next (older) page; absent on the last.'),
  })
  .meta({
    id: 'AdminEventPage',
    description: 'Events held by the instance answering (a bounded buffer of the latest), newest first.',
  })

/** The SSE stream's documented answer (text, not JSON). */
export const eventStreamSchema = z.string().meta({
  id: 'AdminEventStream',
  description:
    'text/event-stream: `id: <event id>`, `event: <type>`, `data: <AdminEvent as JSON>` for each event; ' +
    '`event: gap` (data `{"missed": n}`) when events were lost between `Last-Event-ID` and the oldest held; ' +
    'a comment line every 15 s to keep the connection open.',
})
