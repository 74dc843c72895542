import { parseInput } from '../parse.js'
import { type AdminRoute, notImplemented, type RouteDeps } from '../route.js'
import { eventPageSchema, eventQuerySchema, eventStreamSchema } from '../schemas/events.js'

const NO_FEED = "the gateway's events (alerts, blocks, budgets, store outages, webhooks)"

export function eventRoutes(deps: RouteDeps): AdminRoute[] {
  return [
    {
      method: 'GET',
      path: '/events',
      operationId: 'events',
      tag: 'events',
      summary: 'Alerts, blocks, budget exhaustion, store outages and webhook deliveries, newest first',
      description:
        'The latest events held by the instance answering (a bounded buffer). 501 when this admin API ' +
        'was started without an events feed.',
      query: eventQuerySchema,
      response: eventPageSchema,
      errors: [400, 501],
      async handle({ query }) {
        if (deps.events === undefined) throw notImplemented('the events feed', NO_FEED)
        const q = parseInput(eventQuerySchema, query ?? {}, 'query')
        const { feed } = deps.events
        return { stream: feed.stream, ...feed.list(q) }
      },
    },
    {
      method: 'GET',
      path: '/events/stream',
      operationId: 'eventStream',
      tag: 'events',
      summary: 'The same events as they happen, as server-sent events',
      description:
        'Send `Last-Event-ID` to get what was missed since that event (what the buffer still holds; ' +
        'without it, only what comes next). Needs the admin token like any route: read it with a ' +
        '`fetch` that sends `Authorization` (a browser `EventSource` cannot), never with the token in the URL. ' +
        '503 (`too_many_streams`) when too many are open.',
      response: eventStreamSchema,
      produces: 'text/event-stream',
      errors: [501],
      async handle({ request, reply }) {
        if (deps.events === undefined) throw notImplemented('the events feed', NO_FEED)
        deps.events.streams.serve(request, reply)
        return undefined
      },
    },
  ]
}
