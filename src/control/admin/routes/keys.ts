import type { AdminRoute, RouteDeps } from '../route.js'
import { keyIdSchema } from '../schemas/common.js'
import {
  issuedKeySchema,
  keyCreateSchema,
  keyListQuerySchema,
  keyPageSchema,
  keyRotateSchema,
  keySchema,
  keyUpdateSchema,
} from '../schemas/keys.js'

const id = { id: keyIdSchema }

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
      description: 'Filter by team, tier, user or status; search in name and id; sort; page by offset.',
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
      params: id,
      response: keySchema,
      errors: [404],
      handle: ({ params }) => service.getKey(params.id!),
    },
    {
      method: 'PATCH',
      path: '/keys/:id',
      operationId: 'updateKey',
      tag: 'keys',
      summary: 'Change a key',
      description: 'Name, tier, team, user, limits, budgets, expiry, metadata; null clears.',
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
        'At once and for good (401 on every gateway within about a second). Revoking twice changes nothing.',
      params: id,
      response: keySchema,
      errors: [404],
      handle: ({ params, actor }) => service.revokeKey(params.id!, actor()),
    },
    {
      method: 'POST',
      path: '/keys/:id/rotate',
      operationId: 'rotateKey',
      tag: 'keys',
      summary: 'Rotate a key: issue a new secret, with a grace for the old one',
      description: 'Answers the whole new key this one time. A revoked key cannot be rotated (409).',
      params: id,
      body: keyRotateSchema,
      bodyRequired: false,
      response: issuedKeySchema,
      errors: [400, 404, 409, 413],
      handle: ({ params, body, actor }) => service.rotateKey(params.id!, body, actor()),
    },
  ]
}
