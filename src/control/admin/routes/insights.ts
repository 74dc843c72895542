import type { Decision } from '../../../limiter.js'
import { parseInput } from '../parse.js'
import { type AdminRoute, notImplemented, type RouteDeps } from '../route.js'
import {
  inspectManySchema,
  latencySchema,
  seriesQuerySchema,
  seriesSchema,
  spendQuerySchema,
  spendSchema,
  subjectStatesSchema,
} from '../schemas/insights.js'
import { tierState } from './system.js'

/** Subjects inspected at once when the limiter has no batch call. */
const INSPECT_CONCURRENCY = 8

/** What the dashboard plots and draws: usage over time, spend against budgets, live limits, latency. */
export function insightRoutes(deps: RouteDeps): AdminRoute[] {
  const { service, subjects } = deps
  return [
    {
      method: 'GET',
      path: '/usage/series',
      operationId: 'usageSeries',
      tag: 'usage',
      summary: 'Usage over time: requests, refusals, tokens and dollars per minute, hour or day',
      description:
        'Every bucket of [from, to), empty ones included, overall or for one key, team, user, model or ' +
        'tier. At most 1,500 buckets (a day by the minute is 1,440): a longer range needs a larger step.',
      query: seriesQuerySchema,
      response: seriesSchema,
      errors: [400],
      handle: ({ query }) => service.usageSeries(query),
    },
    {
      method: 'GET',
      path: '/spend',
      operationId: 'spend',
      tag: 'usage',
      summary: 'Spend in the current day, week or month, per key, team or user (what budgets count)',
      description:
        'Dollars, tokens and requests charged to limits since the start of the calendar period (UTC) ' +
        'holding now, largest first; `id` (repeatable) narrows it to some owners.',
      query: spendQuerySchema,
      response: spendSchema,
      errors: [400],
      handle: ({ query }) => service.spend(query),
    },
    {
      method: 'GET',
      path: '/latency',
      operationId: 'latency',
      tag: 'system',
      summary: 'The latency the gateway adds to calls: p50, p90, p99 over a recent window',
      description:
        "Measured by the instance answering, excluding the upstream's own time. 501 when the server " +
        'measures none (an admin API on a port of its own without the gateway).',
      response: latencySchema,
      errors: [501],
      async handle() {
        if (deps.latency === undefined) throw notImplemented('latency', "the gateway's latency figures")
        return deps.latency()
      },
    },
    {
      method: 'POST',
      path: '/subjects/inspect',
      operationId: 'inspectSubjects',
      tag: 'subjects',
      summary: "Inspect several subjects' live limits at once (charging nothing)",
      description: "Up to 100 subjects, answered in order. 501 without access to the gateway's limiter.",
      body: inspectManySchema,
      response: subjectStatesSchema,
      errors: [400, 413, 501],
      async handle({ body }) {
        if (subjects === undefined) throw notImplemented('inspecting subjects')
        const { subjects: wanted } = parseInput(inspectManySchema, body, 'body')
        const states = await inspectAll(subjects, wanted)
        return {
          items: wanted.map((subject, i) => ({
            subject,
            tiers: Object.entries(states[i] ?? {}).map(([tier, d]) => tierState(tier, d)),
          })),
        }
      },
    },
  ]
}

async function inspectAll(
  subjects: NonNullable<RouteDeps['subjects']>,
  wanted: readonly string[],
): Promise<Record<string, Decision>[]> {
  if (subjects.inspectMany !== undefined) return subjects.inspectMany(wanted)
  const out: Record<string, Decision>[] = new Array(wanted.length)
  let next = 0
  const worker = async () => {
    while (next < wanted.length) {
      const i = next++
      out[i] = await subjects.inspect(wanted[i]!)
    }
  }
  await Promise.all(Array.from({ length: Math.min(INSPECT_CONCURRENCY, wanted.length) }, worker))
  return out
}
