import type { AdminRoute, RouteDeps } from '../route.js'
import { keyRefSchema } from '../schemas/common.js'
import {
  issuedKeySchema,
  keyCreateSchema,
  keyListQuerySchema,
  keyPageSchema,
  keyRotateSchema,
  keySchema,
  keyUpdateSchema,
  listedKeySchema,
} from '../schemas/keys.js'

const id = { id: keyRefSchema }

export function keyRoutes({ service }: RouteDeps): AdminRoute[] {
  return [
    {
      method: 'POST',
      path: '/keys',
      operationId: 'createKey',
      tag: 'keys',
      summary: 'Create a key',
      description: 'Answers the whole key (`key`) this one time: it is never shown again.',
      body: keyCreateSchema,
      status: 201,
      response: issuedKeySchema,
      errors: [400, 409, 413],
      handle: ({ body, actor }) => service.createKey(body, actor()),
    },
    {
      method: 'GET',
      path: '/keys',
      operationId: 'listKeys',
      tag: 'keys',
      summary: 'List keys',
      description:
        'Filter by team, tier, user, status or source; search in name and id; sort; page by offset. The database\'s keys come first, then the keys of sluice.yaml (read-only, `source: "sluice.yaml"`).',
      query: keyListQuerySchema,
      response: keyPageSchema,
      errors: [400],
      handle: ({ query }) => service.listKeys(query),
    },
    {
      method: 'GET',
      path: '/keys/:id',
      operationId: 'getKey',
      tag: 'keys',
      summary: 'Show a key (never its secret)',
      description: 'A key of the database, or of sluice.yaml (read-only).',
      params: id,
      response: listedKeySchema,
      errors: [404],
      handle: ({ params }) => service.getKey(params.id!),
    },
    {
      method: 'PATCH',
      path: '/keys/:id',
      operationId: 'updateKey',
      tag: 'keys',
      summary: 'Change a key',
      description:
        'Name, tier, team, user, limits, budgets, expiry, metadata; null clears. A key of sluice.yaml: 409 `read_only_key`.',
      params: id,
      body: keyUpdateSchema,
      response: keySchema,
      errors: [400, 404, 409, 413],
      handle: ({ params, body, actor }) => service.updateKey(params.id!, body, actor()),
    },
    {
      method: 'POST',
      path: '/keys/:id/revoke',
      operationId: 'revokeKey',
      tag: 'keys',
      summary: 'Revoke a key',
      description:
        'At once and for good (401 on every gateway within about a second). Revoking twice changes nothing. A key of sluice.yaml: 409 `read_only_key`.',
      params: id,
      response: keySchema,
      errors: [404, 409],
      handle: ({ params, actor }) => service.revokeKey(params.id!, actor()),
    },
    {
      method: 'POST',
      path: '/keys/:id/rotate',
      operationId: 'rotateKey',
      tag: 'keys',
      summary: 'Rotate a key: issue a new secret, with a grace for the old one',
      description:
        'Answers the whole new key this one time. A revoked key cannot be rotated (409), nor a key of sluice.yaml (409 `read_only_key`).',
      params: id,
      body: keyRotateSchema,
      bodyRequired: false,
      response: issuedKeySchema,
      errors: [400, 404, 409, 413],
      handle: ({ params, body, actor }) => service.rotateKey(params.id!, body, actor()),
    },
  ]
}
