import type { Decision } from '../../../limiter.js'
import { notFound } from '../errors.js'
import { parseInput } from '../parse.js'
import { type AdminRoute, notImplemented, type RouteDeps } from '../route.js'
import {
  openApiDocumentSchema,
  statusSchema,
  subjectParamSchema,
  subjectStateSchema,
  subjectUnblockedSchema,
} from '../schemas/system.js'

const subjectParam = { subject: subjectParamSchema }

/** A Decision as JSON: `Infinity` (a request that can never pass) becomes null, not a lost value. */
export function tierState(tier: string, d: Decision) {
  return {
    tier,
    allowed: d.allowed,
    blocked: d.blocked,
    retryAfterMs: Number.isFinite(d.retryAfterMs) ? d.retryAfterMs : null,
    deniedBy: d.deniedBy ?? null,
    limits: d.limits.map((l) => ({
      name: l.name,
      unit: l.unit,
      kind: l.kind,
      limit: l.limit,
      remaining: l.remaining,
      resetMs: l.resetMs,
      windowSeconds: l.windowSeconds,
    })),
  }
}

export function systemRoutes(deps: RouteDeps): AdminRoute[] {
  const { service, subjects } = deps
  return [
    {
      method: 'GET',
      path: '/subjects/:subject',
      operationId: 'inspectSubject',
      tag: 'subjects',
      summary: "Inspect a subject's live limits (charging nothing)",
      description:
        'The subject is URL-encoded: `key%3Aab12cd34ef`, `ip%3A203.0.113.7`. 404 when no tier counts ' +
        "its kind; 501 when this admin API has no access to the gateway's limiter.",
      params: subjectParam,
      response: subjectStateSchema,
      errors: [400, 404, 501],
      async handle({ params }) {
        if (subjects === undefined) throw notImplemented('inspecting subjects')
        const subject = parseInput(subjectParamSchema, params.subject, 'subject')
        const states = await subjects.inspect(subject)
        const tiers = Object.entries(states).map(([tier, d]) => tierState(tier, d))
        if (tiers.length === 0) throw notFound(`no tier counts ${subject.split(':')[0]} subjects`)
        return { subject, tiers }
      },
    },
    {
      method: 'POST',
      path: '/subjects/:subject/unblock',
      operationId: 'unblockSubject',
      tag: 'subjects',
      summary: 'Lift a block on a subject in every tier (and forget its strikes)',
      params: subjectParam,
      response: subjectUnblockedSchema,
      errors: [400, 501],
      async handle({ params, actor }) {
        if (subjects === undefined) throw notImplemented('unblocking subjects')
        const subject = parseInput(subjectParamSchema, params.subject, 'subject')
        const by = actor()
        await subjects.unblock(subject)
        await service.recordUnblock(subject, by)
        return { subject, unblocked: true }
      },
    },
    {
      method: 'GET',
      path: '/status',
      operationId: 'status',
      tag: 'system',
      summary: 'The state of the control plane: database, change feed, ledger, store, version',
      response: statusSchema,
      errors: [],
      async handle() {
        const store = deps.storeStatus === undefined ? null : await deps.storeStatus()
        return {
          version: deps.version,
          time: new Date().toISOString(),
          tiers: deps.tiers === null ? null : [...deps.tiers()],
          database: await service.databaseStatus(),
          store: store ?? null,
        }
      },
    },
    {
      method: 'GET',
      path: '/openapi.json',
      operationId: 'openapi',
      tag: 'system',
      summary: 'This API, described in OpenAPI 3.1',
      response: openApiDocumentSchema,
      errors: [],
      handle: async () => deps.document(),
    },
  ]
}
