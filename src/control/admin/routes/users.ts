import type { AdminRoute, RouteDeps } from '../route.js'
import { userIdSchema } from '../schemas/common.js'
import {
  userDeletedSchema,
  userListQuerySchema,
  userPageSchema,
  userSchema,
  userSetSchema,
} from '../schemas/teams-users.js'

const id = { id: userIdSchema.describe('The end user id, URL-encoded.') }

export function userRoutes({ service }: RouteDeps): AdminRoute[] {
  return [
    {
      method: 'GET',
      path: '/users',
      operationId: 'listUsers',
      tag: 'users',
      summary: 'List the end users that have overrides',
      query: userListQuerySchema,
      response: userPageSchema,
      errors: [400],
      handle: ({ query }) => service.listUsers(query),
    },
    {
      method: 'GET',
      path: '/users/:id',
      operationId: 'getUser',
      tag: 'users',
      summary: "Show an end user's overrides",
      params: id,
      response: userSchema,
      errors: [404],
      handle: ({ params }) => service.getUser(params.id!),
    },
    {
      method: 'PUT',
      path: '/users/:id',
      operationId: 'setUser',
      tag: 'users',
      summary: "Set an end user's overrides (creates or changes them)",
      params: id,
      body: userSetSchema,
      response: userSchema,
      errors: [400, 413],
      handle: ({ params, body, actor }) => service.setUser(params.id!, body, actor()),
    },
    {
      method: 'DELETE',
      path: '/users/:id',
      operationId: 'deleteUser',
      tag: 'users',
      summary: "Remove an end user's overrides (the tier's limits apply again)",
      params: id,
      response: userDeletedSchema,
      errors: [404],
      handle: ({ params, actor }) => service.deleteUser(params.id!, actor()),
    },
  ]
}
