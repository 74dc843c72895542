/**
 * sluice's HTTP layer: one framework-agnostic core (Sluice) and helpers the gateway and the
 * adapters (sluice/express, sluice/fastify, sluice/hono, sluice/node) share.
 */
export {
  type CheckResult,
  createSluice,
  type Graduation,
  type Identification,
  type Identity,
  type Level,
  type RateLimitState,
  type Refusal,
  releaseState,
  Sluice,
  shouldRetry,
  warningFor,
} from './core.js'
export type {
  AlertEvent,
  AuthFailureEvent,
  BlockEvent,
  DenyEvent,
  IdentityKind,
  ShadowEvent,
  SluiceEvents,
  SluiceLogger,
  ThrottleEvent,
  WebhookErrorEvent,
} from './events.js'
export {
  ALL_HEADER_GROUPS,
  addRateLimitHeaders,
  addRetryHeaders,
  advertisedRetryMs,
  formatDuration,
  type HeaderGroups,
  rateLimitHeader,
  rateLimitPolicyHeader,
  retryAfterSeconds,
  tightestLimit,
} from './headers.js'
export { type ClientIp, type IpOptions, IpResolver, IpSet, parseIp, type TrustProxy } from './ip.js'
export {
  API_KEY_PREFIX,
  generateApiKey,
  hashApiKey,
  type KeyConfig,
  type KeyRecord,
  type KeyRegistry,
  keyIdOf,
  MemoryKeyRegistry,
} from './keys.js'
export type { AccessList, AuthResult, CostOption, CostSpec, SluiceOptions } from './options.js'
export { type HeaderBag, headerOf, type RequestLike } from './request.js'
export {
  authLockoutBody,
  denialType,
  describeLimit,
  type ErrorBody,
  forbiddenBody,
  invalidKeyBody,
  rateLimitBody,
  unavailableBody,
} from './responses.js'
export { defaultTiers, type Tier, type TierScope, validateTiers } from './tiers.js'
export type { WebhookOptions } from './webhook.js'
