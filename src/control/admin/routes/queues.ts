import { type AdminRoute, notImplemented, type RouteDeps } from '../route.js'
import { queuesSchema } from '../schemas/queues.js'

/** The fair queues (docs/queueing.md): who waits now, and how waits ended recently. */
export function queueRoutes(deps: RouteDeps): AdminRoute[] {
  return [
    {
      method: 'GET',
      path: '/queues',
      operationId: 'queues',
      tag: 'system',
      summary: 'Requests waiting in queues per tier now, and wait times over a recent window',
      description:
        'Waiting now and the oldest wait are read from the store: with Redis, every instance sharing it ' +
        "(the queues' own keys); with the in-memory store, this process. Admitted and refused waits and " +
        'the wait percentiles are those this instance saw end. 501 without access to the gateway.',
      response: queuesSchema,
      errors: [501],
      async handle() {
        if (deps.queues === undefined) throw notImplemented('queues')
        return deps.queues()
      },
    },
  ]
}
