import { z } from 'zod'
import { DETECTORS } from '../../../core/detectors/options.js'
import { DETECTION_STATES } from '../detection-state.js'
import { boolQuery, intQuery, printable } from './common.js'

export const detectionSubjectSchema = printable(300, 'subject')
  .regex(
    /^((key|user|ip|key-prefix):.|gateway$)/,
    'must be a subject such as key:<id>, user:<id>, ip:<address>, key-prefix:<prefix> or gateway',
  )
  .describe(
    'A subject as detectors see it: `key:<id>`, `user:<id>`, `ip:<address>`, or, for failed keys, `gateway` and `key-prefix:<prefix>`.',
  )

export const detectionQuerySchema = z.strictObject({
  limit: z.coerce.number().int().min(1).max(1000).optional().describe('Newest first; 1..1000 (default 100).'),
  offset: intQuery(0, 999).optional().describe('Matching detections to skip (default 0).'),
  subject: printable(300, 'subject').optional().describe('Only detections of this subject.'),
  detector: printable(64, 'detector').optional().describe('Only detections of this detector (its kind).'),
  state: z
    .enum(DETECTION_STATES)
    .optional()
    .describe('Only active ones (the flag stands), cleared by an operator, or expired.'),
  shadow: boolQuery.optional().describe('Only shadow-mode detections (true) or acting ones (false).'),
})

const detectionSchema = z.record(z.string(), z.unknown()).meta({
  id: 'Detection',
  description:
    'A detection as the detectors reported it: `detector`, `level` (alert, throttle, block), `subject`, ' +
    '`tier`, `shadow`, `value`, `threshold`, `addresses` (shared keys, failed keys), `countries` (shared keys, where a GeoIP database is configured), `prefix` (failed keys sharing a key ' +
    'prefix), `message`, `at`; and ' +
    'where it stands now: `state` (active, cleared, expired), `until` (while active: when the flag ends, ' +
    'null: when an operator clears it), `cleared` ({ at, by } or null), `allowListed` (the subject: ' +
    'false, true or until when).',
})

export const detectionListSchema = z
  .strictObject({
    items: z.array(detectionSchema),
    total: z.number().int().describe('Kept detections matching the filters (at most 1,000 are kept).'),
  })
  .meta({
    id: 'DetectionList',
    description: 'The newest detections kept by the detector store (every instance), a page of them.',
  })

const flagSchema = z.strictObject({
  level: z.enum(['alert', 'throttle', 'block']),
  until: z.string().nullable().describe('When it ends (ISO 8601); null: until an operator clears it.'),
})

export const detectorStateSchema = z
  .strictObject({
    subject: z.string(),
    flags: z.record(z.string(), flagSchema).describe('Standing flags by detector.'),
    baseline: z.number().describe('Spend baseline per bucket (tokens or USD, as the spend detector counts).'),
    addresses: z.array(z.string()).describe('Addresses (IPv6: /64) seen in the shared-key window.'),
    countries: z
      .array(z.string())
      .describe(
        'Countries (ISO 3166 codes) seen in the shared-key window, where a GeoIP database is configured.',
      ),
    usualAddresses: z
      .number()
      .describe("The key's learned usual number of distinct addresses per window (0 before any history)."),
    allowListed: z
      .union([z.boolean(), z.string()])
      .describe('false, true (for good) or until when (ISO 8601).'),
  })
  .meta({ id: 'DetectorState', description: "A subject's standing with the abuse detectors." })

export const clearDetectionSchema = z
  .strictObject({
    detector: z
      .enum(DETECTORS as [string, ...string[]], { error: `must be one of ${DETECTORS.join(', ')}` })
      .optional()
      .describe('Only this detector (default: all).'),
  })
  .meta({ id: 'ClearDetection', description: 'Which flags to lower.', examples: [{ detector: 'loop' }, {}] })

export const allowDetectionSchema = z
  .strictObject({
    forMs: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe(
        'How long the detectors leave the subject alone (default: for good; 0 lifts the allow-listing).',
      ),
  })
  .meta({
    id: 'AllowDetection',
    description: 'Allow-list a subject with the detectors.',
    examples: [{ forMs: 3_600_000 }, {}],
  })

export const detectionActionSchema = z
  .strictObject({ subject: z.string(), done: z.literal(true) })
  .meta({ id: 'DetectionAction', description: 'Done on every instance (the state is in the shared store).' })
