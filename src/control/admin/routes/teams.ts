import type { AdminRoute, RouteDeps } from '../route.js'
import { teamIdSchema } from '../schemas/common.js'
import {
  teamCreateSchema,
  teamDeletedSchema,
  teamDeleteQuerySchema,
  teamListQuerySchema,
  teamPageSchema,
  teamSchema,
  teamUpdateSchema,
} from '../schemas/teams-users.js'

const id = { id: teamIdSchema }

export function teamRoutes({ service }: RouteDeps): AdminRoute[] {
  return [
    {
      method: 'POST',
      path: '/teams',
      operationId: 'createTeam',
      tag: 'teams',
      summary: 'Create a team',
      body: teamCreateSchema,
      status: 201,
      response: teamSchema,
      errors: [400, 409, 413],
      handle: ({ body, actor }) => service.createTeam(body, actor()),
    },
    {
      method: 'GET',
      path: '/teams',
      operationId: 'listTeams',
      tag: 'teams',
      summary: 'List teams',
      query: teamListQuerySchema,
      response: teamPageSchema,
      errors: [400],
      handle: ({ query }) => service.listTeams(query),
    },
    {
      method: 'GET',
      path: '/teams/:id',
      operationId: 'getTeam',
      tag: 'teams',
      summary: 'Show a team',
      params: id,
      response: teamSchema,
      errors: [404],
      handle: ({ params }) => service.getTeam(params.id!),
    },
    {
      method: 'PATCH',
      path: '/teams/:id',
      operationId: 'updateTeam',
      tag: 'teams',
      summary: 'Change a team',
      params: id,
      body: teamUpdateSchema,
      response: teamSchema,
      errors: [400, 404, 413],
      handle: ({ params, body, actor }) => service.updateTeam(params.id!, body, actor()),
    },
    {
      method: 'DELETE',
      path: '/teams/:id',
      operationId: 'deleteTeam',
      tag: 'teams',
      summary: 'Delete a team',
      description: 'Refused (409) while keys belong to it, unless `force=true`: its keys are then detached.',
      params: id,
      query: teamDeleteQuerySchema,
      response: teamDeletedSchema,
      errors: [400, 404, 409],
      handle: ({ params, query, actor }) => service.deleteTeam(params.id!, query, actor()),
    },
  ]
}
