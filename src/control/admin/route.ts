import type { FastifyReply, FastifyRequest } from 'fastify'
import type { z } from 'zod'
import type { Decision } from '../../limiter.js'
import { AdminHttpError } from './errors.js'
import type { Actor, AdminService } from './service.js'

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
}

/** What the route files are built from. */
export interface RouteDeps {
  service: AdminService
  subjects: AdminSubjects | undefined
  /** The limiter store's state for /status (null when not given). */
  storeStatus: (() => unknown) | undefined
  version: string
  /** The OpenAPI document (built once every route is known). */
  document(): Record<string, unknown>
}

export const notImplemented = (what: string) =>
  new AdminHttpError(
    501,
    `${what} is not available here: this admin API was started without access to the gateway's limiter`,
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
