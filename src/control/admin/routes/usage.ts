import type { AdminRoute, RouteDeps } from '../route.js'
import {
  auditPageSchema,
  auditQuerySchema,
  ledgerPageSchema,
  ledgerQuerySchema,
  usageQuerySchema,
  usageReportSchema,
} from '../schemas/usage-audit.js'

export function usageRoutes({ service }: RouteDeps): AdminRoute[] {
  return [
    {
      method: 'GET',
      path: '/usage',
      operationId: 'usage',
      tag: 'usage',
      summary: 'Usage totals over a time range',
      description:
        'Requests, served, refused and failed counts, tokens and dollars over [from, to), one total or ' +
        'grouped by key, team, user, model, tier, day (UTC, or utcOffsetMinutes), status, outcome, route or upstream.',
      query: usageQuerySchema,
      response: usageReportSchema,
      errors: [400],
      handle: ({ query }) => service.usage(query),
    },
    {
      method: 'GET',
      path: '/ledger',
      operationId: 'ledger',
      tag: 'usage',
      summary: 'Ledger rows (one per request), newest first',
      query: ledgerQuerySchema,
      response: ledgerPageSchema,
      errors: [400],
      handle: ({ query }) => service.ledger(query),
    },
    {
      method: 'GET',
      path: '/audit',
      operationId: 'audit',
      tag: 'audit',
      summary: 'The audit log: every admin change, newest first',
      query: auditQuerySchema,
      response: auditPageSchema,
      errors: [400],
      handle: ({ query }) => service.audit(query),
    },
  ]
}
