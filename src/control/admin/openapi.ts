/**
 * The OpenAPI 3.1 document of the admin API, generated from the route table and the zod schemas
 * that validate the requests: what the API accepts and what it documents are one thing.
 */
import { z } from 'zod'
import { type AdminRoute, openApiPath } from './route.js'
import { errorSchema } from './schemas/common.js'

type JsonSchema = Record<string, unknown>

const COMPONENT_REF = '#/components/schemas/'
const uri = (id: string) => `${COMPONENT_REF}${id}`

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad input: `error.param` names the field',
  401: 'No admin token, or a wrong one',
  404: 'No such record (or route)',
  409: 'Conflicts with the current state',
  413: 'The request body is too large',
  429: 'Too many failed admin logins from this address: wait `Retry-After` seconds',
  500: 'Internal error (details in the server log)',
  501: "Not available: this admin API has no access to the gateway's limiter",
  503: "The control-plane database or the limiter's store did not answer, or too many event streams are open: try again",
}
/** What any admin route may answer, whatever it does. */
const COMMON_ERRORS = [401, 429, 500, 503]

function componentId(schema: z.ZodType, where: string): string {
  const id = z.globalRegistry.get(schema)?.id
  if (typeof id !== 'string') throw new Error(`${where}: the schema needs a meta id to be a component`)
  return id
}

/** A schema inline (a parameter's): JSON Schema 2020-12, as OpenAPI 3.1 takes it. */
function inline(schema: z.ZodType, where: string): JsonSchema {
  const { $schema: _, ...json } = z.toJSONSchema(schema, {
    io: 'input',
    unrepresentable: 'any',
  }) as JsonSchema
  if ('$defs' in json) throw new Error(`${where}: a parameter schema must not hold definitions`)
  return json
}

function isOptional(schema: z.ZodType): boolean {
  return schema.safeParse(undefined).success
}

function parametersOf(route: AdminRoute): JsonSchema[] {
  const out: JsonSchema[] = []
  for (const [name, schema] of Object.entries(route.params ?? {})) {
    const { description, ...json } = inline(schema, `${route.operationId} path ${name}`)
    out.push({ name, in: 'path', required: true, description, schema: json })
  }
  for (const [name, field] of Object.entries(route.query?.shape ?? {})) {
    const schema = field as z.ZodType
    const { description, ...json } = inline(schema, `${route.operationId} query ${name}`)
    out.push({ name, in: 'query', required: !isOptional(schema), description, schema: json })
  }
  return out
}

function json(ref: string): JsonSchema {
  return { 'application/json': { schema: { $ref: uri(ref) } } }
}

function operationOf(route: AdminRoute): JsonSchema {
  const id = componentId(route.response, `${route.operationId} response`)
  const responses: JsonSchema = {
    [String(route.status ?? 200)]: {
      description: route.summary,
      content:
        route.produces === 'text/event-stream'
          ? { 'text/event-stream': { schema: { $ref: uri(id) } } }
          : json(id),
    },
  }
  for (const status of [...route.errors, ...COMMON_ERRORS].sort()) {
    const answer: JsonSchema = { description: STATUS_TEXT[status] ?? 'Error', content: json('Error') }
    if (status === 429 || status === 503) {
      answer.headers = {
        'Retry-After': { description: 'Seconds to wait', schema: { type: 'integer', minimum: 1 } },
      }
    }
    responses[String(status)] = answer
  }
  const operation: JsonSchema = {
    operationId: route.operationId,
    tags: [route.tag],
    summary: route.summary,
    ...(route.description ? { description: route.description } : {}),
    responses,
  }
  const parameters = parametersOf(route)
  if (parameters.length > 0) operation.parameters = parameters
  if (route.body) {
    operation.requestBody = {
      required: route.bodyRequired ?? true,
      content: json(componentId(route.body, `${route.operationId} body`)),
    }
  }
  return operation
}

/** Every `$ref` to a component, anywhere in `value`. */
function refsIn(value: unknown, found: Set<string>): void {
  if (Array.isArray(value)) {
    for (const item of value) refsIn(item, found)
  } else if (typeof value === 'object' && value !== null) {
    for (const [key, item] of Object.entries(value)) {
      if (key === '$ref' && typeof item === 'string' && item.startsWith(COMPONENT_REF)) {
        found.add(item.slice(COMPONENT_REF.length))
      } else refsIn(item, found)
    }
  }
}

/**
 * The components the paths use, and those they use in turn. Request and response schemas are
 * described as sent (zod's input side): answers are strict objects without defaults or
 * transforms, so both sides are the same for them, and the one transform they hold — limit
 * overrides — is returned as written.
 */
function componentsFor(paths: JsonSchema, examples: Map<string, unknown[]>): Record<string, JsonSchema> {
  const all = z.toJSONSchema(z.globalRegistry, { io: 'input', uri, unrepresentable: 'any' }).schemas
  const wanted = new Set<string>()
  refsIn(paths, wanted)
  const out: Record<string, JsonSchema> = {}
  const queue = [...wanted]
  while (queue.length > 0) {
    const id = queue.pop()!
    if (id in out) continue
    const schema = all[id]
    if (schema === undefined) throw new Error(`the component ${id} is referenced but not registered`)
    const { $schema: _s, $id: _i, ...body } = schema as JsonSchema
    // zod leaves out the examples of a schema holding a transform (limit durations) on its input side.
    const given = examples.get(id)
    if (given !== undefined && body.examples === undefined) body.examples = given
    out[id] = body
    const inner = new Set<string>()
    refsIn(body, inner)
    queue.push(...inner)
  }
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)))
}

export function buildOpenApi(routes: readonly AdminRoute[], info: { version: string }): JsonSchema {
  componentId(errorSchema, 'the error schema')
  const paths: JsonSchema = {}
  const examples = new Map<string, unknown[]>()
  for (const route of routes) {
    const meta = route.body ? z.globalRegistry.get(route.body) : undefined
    if (meta?.id !== undefined && Array.isArray(meta.examples)) examples.set(meta.id, meta.examples)
    const path = openApiPath(route.path)
    const item = (paths[path] ?? {}) as JsonSchema
    item[route.method.toLowerCase()] = operationOf(route)
    paths[path] = item
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'sluice admin API',
      version: info.version,
      description:
        'Keys, teams, end users, budgets, usage, the ledger, the audit log and live limits of a sluice ' +
        'gateway. Every route needs `Authorization: Bearer <admin token>`; changes are recorded in the ' +
        'audit log under `admin-api:<x-sluice-actor header, or "admin">`.',
    },
    security: [{ adminToken: [] }],
    tags: ['keys', 'teams', 'users', 'usage', 'audit', 'subjects', 'events', 'detections', 'system'].map(
      (name) => ({
        name,
      }),
    ),
    paths,
    components: {
      securitySchemes: { adminToken: { type: 'http', scheme: 'bearer', description: 'The admin token.' } },
      schemas: componentsFor(paths, examples),
    },
  }
}
