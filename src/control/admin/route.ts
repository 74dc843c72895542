import type { FastifyReply, FastifyRequest } from 'fastify'
import type { z } from 'zod'
import type { QueuesReport } from '../../http/queue-report.js'
import type { Decision } from '../../limiter.js'
import type { DetectorStore } from '../../store/detectors/types.js'
import { AdminHttpError } from './errors.js'
import type { AdminEventFeed } from './events.js'
import type { LatencySnapshot } from './latency.js'
import type { Actor, AdminService } from './service.js'
import type { EventStreams } from './sse.js'

/** Every admin route lives below this prefix. */
export const ADMIN_PREFIX = '/admin/v1'

export type AdminMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE'

/** What a route's handler gets: the raw params, query and body (the service validates them). */
export interface AdminRouteContext {
  params: Record<string, string>
  query: unknown
  body: unknown
  /** The actor the audit log records for this request (`admin-api:<name>`); a bad header is a 400. */
  actor(): Actor
  request: FastifyRequest
  reply: FastifyReply
}

/**
 * One admin route, as data: Fastify serves it and the OpenAPI document describes it from the same
 * entry, so a route cannot exist without being documented.
 */
export interface AdminRoute {
  method: AdminMethod
  /** Below ADMIN_PREFIX, in Fastify's syntax: `/keys/:id`. */
  path: string
  operationId: string
  tag: string
  summary: string
  description?: string
  /** Path parameters: name → schema (for the document; the service checks the values). */
  params?: Record<string, z.ZodType>
  /** Query parameters, one per field. */
  query?: z.ZodObject
  /** The request body (a schema with a meta id: a component of the document). */
  body?: z.ZodType
  /** Whether a body must be sent (default: true when `body` is given, except for POST actions). */
  bodyRequired?: boolean
  /** The success status (default 200) and its body (a schema with a meta id). */
  status?: number
  response: z.ZodType
  /**
   * The success answer's media type (default application/json). `text/event-stream`: the handler
   * takes the reply over (`reply.hijack()`) and streams it.
   */
  produces?: 'application/json' | 'text/event-stream'
  /** Error statuses this route may answer besides those every route may (401, 429, 500, 503). */
  errors: number[]
  handle(ctx: AdminRouteContext): Promise<unknown>
}

/** What the subject routes need from the gateway's limiter. */
export interface AdminSubjects {
  /** The subject's state in every tier that counts its kind (Http core's `inspect`), charging nothing. */
  inspect(subject: string): Promise<Record<string, Decision>>
  /** Lifts a block in every tier and forgets the strikes (Http core's `unblock`). */
  unblock(subject: string): Promise<void>
  /**
   * Several subjects at once, in order (e.g. in one Redis round trip). Absent: `inspect` is called
   * for each, a few at a time.
   */
  inspectMany?(subjects: readonly string[]): Promise<Record<string, Decision>[]>
}

/** What the route files are built from. */
export interface RouteDeps {
  service: AdminService
  subjects: AdminSubjects | undefined
  /** The limiter store's state for /status (null when not given). */
  storeStatus: (() => unknown) | undefined
  version: string
  /** The configured tier names now, for /status (null when the API was given a check, not names). */
  tiers: (() => readonly string[]) | null
  /** The events feed and its SSE readers (undefined: the events routes answer 501). */
  events: { feed: AdminEventFeed; streams: EventStreams } | undefined
  /** The latency the gateway adds (undefined: /latency answers 501). */
  latency: (() => LatencySnapshot | Promise<LatencySnapshot>) | undefined
  /** The fair queues' view (undefined: /queues answers 501). */
  queues?: (() => Promise<QueuesReport>) | undefined
  /** The abuse detectors' store now (undefined: the detections routes answer 501). */
  detections?: (() => DetectorStore) | undefined
  /** The OpenAPI document (built once every route is known). */
  document(): Record<string, unknown>
}

export const notImplemented = (what: string, missing = "access to the gateway's limiter") =>
  new AdminHttpError(
    501,
    `${what} is not available here: this admin API was started without ${missing}`,
    'not_implemented_error',
    'not_implemented',
  )

/** Fastify path → OpenAPI path: `/keys/:id` → `/admin/v1/keys/{id}`. */
export function openApiPath(path: string): string {
  return ADMIN_PREFIX + path.replace(/:([A-Za-z]+)/g, '{$1}')
}

/** A matcher of the concrete URLs a route serves (for 405s: the path exists, the method does not). */
export function pathMatcher(path: string): RegExp {
  const pattern = (ADMIN_PREFIX + path)
    .split('/')
    .map((part) => (part.startsWith(':') ? '[^/]+' : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('/')
  return new RegExp(`^${pattern}/?$`)
}
