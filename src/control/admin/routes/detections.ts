/** /detections: what the abuse detectors found, and an operator's clear and allow-list. */
import type { DetectorName } from '../../../core/detectors/options.js'
import { type ClearRow, withState } from '../detection-state.js'
import { parseInput } from '../parse.js'
import { type AdminRoute, notImplemented, type RouteDeps } from '../route.js'
import {
  allowDetectionSchema,
  clearDetectionSchema,
  detectionActionSchema,
  detectionListSchema,
  detectionQuerySchema,
  detectionSubjectSchema,
  detectorStateSchema,
} from '../schemas/detections.js'

const LEVELS = ['none', 'alert', 'throttle', 'block'] as const
/** Operators' clears read for the list's state: more than this many since the oldest detection shown is not expected. */
const MAX_CLEARS = 1000
const NO_DETECTORS = 'abuse detectors (`detectors` in sluice.yaml)'
const subjectParam = { subject: detectionSubjectSchema }

export function detectionRoutes(deps: RouteDeps): AdminRoute[] {
  const store = () => {
    if (deps.detections === undefined) throw notImplemented('detections', NO_DETECTORS)
    return deps.detections()
  }
  return [
    {
      method: 'GET',
      path: '/detections',
      operationId: 'listDetections',
      tag: 'detections',
      summary:
        'Abuse detections, newest first (prompt loops, spend spikes, shared keys, scraping, failed keys)',
      query: detectionQuerySchema,
      response: detectionListSchema,
      errors: [400, 501],
      async handle({ query }) {
        const s = store()
        const q = parseInput(detectionQuerySchema, query ?? {}, 'query')
        const limit = q.limit ?? 100
        const offset = q.offset ?? 0
        const kept = (await s.recent(1000)).filter(
          (i) =>
            (q.subject === undefined || i.subject === q.subject) &&
            (q.detector === undefined || i.detector === q.detector) &&
            (q.shadow === undefined || (i.shadow === true) === q.shadow),
        )
        // The state needs the flags (a store read per subject): for every match when filtered by it, else the page's.
        const considered = q.state === undefined ? kept.slice(offset, offset + limit) : kept
        const oldest = considered.reduce((t, i) => Math.min(t, Date.parse(i.at)), Number.POSITIVE_INFINITY)
        const clears = Number.isFinite(oldest) ? await clearsSince(deps, oldest) : []
        const stated = await withState(considered, s, clears)
        if (q.state === undefined) return { items: stated, total: kept.length }
        const matching = stated.filter((i) => i.state === q.state)
        return { items: matching.slice(offset, offset + limit), total: matching.length }
      },
    },
    {
      method: 'GET',
      path: '/detections/:subject',
      operationId: 'inspectDetections',
      tag: 'detections',
      summary: "A subject's standing flags, spend baseline, addresses seen and allow-listing",
      params: subjectParam,
      response: detectorStateSchema,
      errors: [400, 501],
      async handle({ params }) {
        const s = store()
        const subject = parseInput(detectionSubjectSchema, params.subject, 'subject')
        const v = await s.inspect(subject)
        const flags: Record<string, { level: (typeof LEVELS)[number]; until: string | null }> = {}
        for (const [name, f] of Object.entries(v.flags)) {
          flags[name] = {
            level: LEVELS[f.lv] ?? 'block',
            until: f.until === 0 ? null : new Date(f.until).toISOString(),
          }
        }
        const allowListed = v.allow === 0 ? false : v.allow === -1 ? true : new Date(v.allow).toISOString()
        return {
          subject,
          flags,
          baseline: v.baseline,
          addresses: v.addresses,
          countries: v.countries,
          usualAddresses: v.usualAddresses,
          allowListed,
        }
      },
    },
    {
      method: 'POST',
      path: '/detections/:subject/clear',
      operationId: 'clearDetections',
      tag: 'detections',
      summary: "Lower a subject's flags (all, or one detector's) and forget what that detector counted",
      params: subjectParam,
      body: clearDetectionSchema,
      bodyRequired: false,
      response: detectionActionSchema,
      errors: [400, 501],
      async handle({ params, body, actor }) {
        const s = store()
        const subject = parseInput(detectionSubjectSchema, params.subject, 'subject')
        const b = parseInput(clearDetectionSchema, body ?? {}, 'body')
        const by = actor()
        await s.clear(
          subject === 'gateway' ? 'gateway' : subject,
          subject === 'gateway' ? 'stuffing' : (b.detector as DetectorName | undefined),
        )
        await deps.service.recordSubjectAction('detection.clear', subject, by, {
          detector: b.detector ?? null,
        })
        return { subject, done: true as const }
      },
    },
    {
      method: 'POST',
      path: '/detections/:subject/allow',
      operationId: 'allowDetections',
      tag: 'detections',
      summary: 'Allow-list a subject with the detectors (for good, for a while, or lift it with 0)',
      params: subjectParam,
      body: allowDetectionSchema,
      bodyRequired: false,
      response: detectionActionSchema,
      errors: [400, 501],
      async handle({ params, body, actor }) {
        const s = store()
        const subject = parseInput(detectionSubjectSchema, params.subject, 'subject')
        const b = parseInput(allowDetectionSchema, body ?? {}, 'body')
        const by = actor()
        await s.allow(subject, b.forMs)
        await deps.service.recordSubjectAction('detection.allow', subject, by, { forMs: b.forMs ?? null })
        return { subject, done: true as const }
      },
    },
  ]
}

/** The operators' clears (audit rows) since `from`, for the list's state. */
async function clearsSince(deps: RouteDeps, from: number): Promise<ClearRow[]> {
  const page = await deps.service.audit({
    action: 'detection.clear',
    from: new Date(from).toISOString(),
    limit: MAX_CLEARS,
  })
  return page.items.map((a) => {
    const detector = (a.after as { detector?: unknown } | null)?.detector
    return {
      subject: a.targetId,
      detector: typeof detector === 'string' ? detector : null,
      at: Date.parse(a.time),
      by: a.actor,
    }
  })
}
