/**
 * The admin API of the control plane: a service layer (what the HTTP API and the CLI call) and
 * `/admin/v1` as a Fastify plugin, in the gateway's app or on a port of its own. See docs/admin.md.
 */
export {
  ADMIN_TOKEN_PREFIX,
  type AdminAuthFailures,
  type AdminTokenOptions,
  type AuthLockout,
  addressGroup,
  generateAdminToken,
  hashAdminToken,
  inProcessAuthFailures,
} from './auth.js'
export { type AdminConfig, adminAuthFrom, adminConfigSchema } from './config.js'
export { type AdminConsoleOptions, adminConsole } from './console.js'
export { DASHBOARD_CSP, DASHBOARD_PATH, type DashboardOptions, dashboardRoutes } from './dashboard.js'
export { type AdminErrorBody, AdminHttpError } from './errors.js'
export {
  connectSluiceEvents,
  connectStoreGuard,
  type ObservableStore,
  type SluiceEventsOptions,
  type WebhookDelivery,
} from './event-sources.js'
export {
  ADMIN_EVENT_TYPES,
  type AdminEvent,
  AdminEventFeed,
  type AdminEventFeedOptions,
  type AdminEventInput,
  type AdminEventPage,
  type AdminEventQuery,
  type AdminEventType,
} from './events.js'
export { LatencyRecorder, type LatencyRecorderOptions, type LatencySnapshot } from './latency.js'
export { buildOpenApi } from './openapi.js'
export { parseInput } from './parse.js'
export { type AdminApiOptions, actorOf, adminApi, adminRoutes } from './plugin.js'
export { ADMIN_PREFIX, type AdminRoute, type AdminSubjects } from './route.js'
export { type AdminServer, type AdminServerOptions, adminLogger, startAdminServer } from './server.js'
export {
  type Actor,
  AdminService,
  type AdminServiceOptions,
  type DatabaseStatus,
  type Page,
  type SeriesReport,
  type SpendReport,
  type UsageReport,
} from './service.js'
export type { EventStreamOptions } from './sse.js'
