/**
 * sluice's HTTP layer: one framework-agnostic core (Sluice) and helpers the gateway and the
 * adapters (sluice/express, sluice/fastify, sluice/hono, sluice/node) share.
 */
export type { Admission, AdmitOptions } from './admit.js'
export type { Answer } from './answers.js'
export { createSluice, Sluice } from './core.js'
export type { DetectionRefusal, Detectors, DetectorsOptions } from './detect.js'
export type {
  AlertEvent,
  AuthFailureEvent,
  BlockEvent,
  DenyEvent,
  DetectionEvent,
  IdentityKind,
  ShadowEvent,
  SluiceEvents,
  SluiceLogger,
  ThrottleEvent,
  WebhookErrorEvent,
} from './events.js'
export type { Graduation, Level } from './graduation.js'
export {
  ALL_HEADER_GROUPS,
  addRateLimitHeaders,
  addRetryHeaders,
  formatDuration,
  type HeaderGroups,
  type ResetHints,
  rateLimitHeader,
  rateLimitPolicyHeader,
  retryAfterSeconds,
  tightestLimit,
} from './headers.js'
export type { Identification, Identity, Refusal } from './identity.js'
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
export { quotaOf, quotaScale, quotaUnit, remainingOf, resetMsOf, windowOf } from './quota.js'
export { type HeaderBag, headerOf, type RequestLike } from './request.js'
export {
  authLockoutBody,
  denialType,
  describeLimit,
  type ErrorBody,
  forbiddenBody,
  formatUsd,
  invalidKeyBody,
  rateLimitBody,
  unavailableBody,
  warningFor,
} from './responses.js'
export { advertisedRetryMs, DEFAULT_MAX_RETRY_WAIT_MS, shouldRetry } from './retry.js'
export { type CheckResult, type RateLimitState, releaseState } from './state.js'
export { defaultTiers, type Tier, type TierScope, validateTiers } from './tiers.js'
export type { WebhookOptions } from './webhook.js'
