/** What the gateway's route handlers share: the server's dependencies and per-request identities. */
import type { FastifyRequest } from 'fastify'
import type { Logger } from 'pino'
import type { Admission, Identification, Sluice } from '../../http/index.js'
import type { Decision } from '../../limiter.js'
import type { SluiceMetrics } from '../../metrics.js'
import type { Accounting } from '../accounting.js'
import type { OversizeStrikes } from '../admission.js'
import type { GatewayConfig } from '../config/schema.js'
import type { TokenCounter } from '../counting.js'
import type { DeploymentMetrics } from '../deployments/metrics.js'
import type { Deployments } from '../deployments/router.js'
import type { InFlightCalls } from '../in-flight.js'
import type { ModelTable } from '../models.js'
import type { GatewayStore } from '../store.js'
import type { UploadGuard } from '../uploads.js'
import type { Upstream } from '../upstream.js'

export interface ServerDeps {
  config: GatewayConfig
  sluice: Sluice
  store: GatewayStore
  accounting: Accounting
  models: ModelTable
  upstreams: ReadonlyMap<string, Upstream>
  logger: Logger
  metrics: SluiceMetrics
  /** Calls being served (shutdown waits for them). */
  calls: InFlightCalls
  /** Set when shutdown begins: new calls get 503, /readyz says so. */
  lifecycle: { closing: boolean }
  /** Models served by deployments (config `deployments`), and their counters. */
  deployments?: Deployments | undefined
  deploymentMetrics?: DeploymentMetrics | undefined
}

/** One gateway app's shared state, handed to every route handler. */
export interface Gate extends ServerDeps {
  /** Who each /v1 request is, set by the identify hook before its body is read. */
  identities: RequestIdentities
  counter: TokenCounter
  strikes: OversizeStrikes
  uploads: UploadGuard
}

/**
 * Each request's identification, kept on the request itself under a symbol of this gateway's own:
 * not in a WeakMap keyed by the request, whose values V8's minor GC keeps alive and promotes (see
 * trace.ts).
 */
export class RequestIdentities {
  private readonly key = Symbol('sluice.identification')

  get(request: FastifyRequest): Identification | undefined {
    return (request as unknown as Record<symbol, Identification | undefined>)[this.key]
  }

  set(request: FastifyRequest, id: Identification): void {
    ;(request as unknown as Record<symbol, Identification | undefined>)[this.key] = id
  }
}

/** Header on answers whose limits could not be checked: how the tier's outage policy decided. */
export const FALLBACK_HEADER = 'x-sluice-fallback'

/** The admission's headers, with the fallback header when its decision was made without the store. */
export function admissionHeaders(admission: Admission): Record<string, string> {
  return withFallback(admission.headers, admission.state.decision)
}

function withFallback(
  headers: Record<string, string>,
  decision: Decision | undefined,
): Record<string, string> {
  if (decision?.fallback !== undefined) headers[FALLBACK_HEADER] = decision.fallback
  return headers
}

/**
 * Answers sent before a body has fully arrived close the connection: otherwise Node would read
 * (and drop) the rest of an upload the client need no longer send.
 */
export function closeIfUploading(
  request: FastifyRequest,
  headers: Record<string, string>,
): Record<string, string> {
  if (!request.raw.complete) headers.connection = 'close'
  return headers
}

export function pathOf(url: string): string {
  const q = url.indexOf('?')
  return q === -1 ? url : url.slice(0, q)
}
