/**
 * The admin API and the dashboard in one plugin: what a host app (the gateway) registers with one
 * call. The dashboard is told whether the API has a token, so that without one it says how to set
 * one instead of asking for it.
 */
import type { FastifyInstance } from 'fastify'
import { expectedDigest } from './auth.js'
import { type DashboardOptions, dashboardRoutes } from './dashboard.js'
import { type AdminApiOptions, adminApi } from './plugin.js'

export interface AdminConsoleOptions extends AdminApiOptions {
  /** The dashboard at /dashboard (default: served from the package's build); false: none. */
  dashboard?: Omit<DashboardOptions, 'adminApi'> | false
}

/** `await app.register(adminConsole, options)`: /admin/v1 and /dashboard, at the root of the app. */
export async function adminConsole(fastify: FastifyInstance, options: AdminConsoleOptions): Promise<void> {
  const { dashboard, ...api } = options
  await fastify.register(adminApi, api)
  if (dashboard === false) return
  const on = expectedDigest(api.auth) !== undefined
  await fastify.register(dashboardRoutes, { ...dashboard, adminApi: on ? 'on' : 'off' })
}
