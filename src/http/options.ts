import { pino } from 'pino'
import { describe, requirePositiveInteger, SluiceInputError } from '../core/errors.js'
import type { BlockOptions, Costs } from '../limiter.js'
import type { SluiceMetrics } from '../metrics.js'
import type { Store } from '../store/types.js'
import type { DetectorsOptions } from './detect.js'
import type { SluiceLogger } from './events.js'
import type { HeaderGroups } from './headers.js'
import type { Identity } from './identity.js'
import { IpSet, type TrustProxy } from './ip.js'
import { type KeyConfig, type KeyRegistry, MemoryKeyRegistry } from './keys.js'
import type { LevelsOf } from './levels.js'
import { defaultTiers, type Tier, validateTiers } from './tiers.js'
import { resolveWebhook, type WebhookOptions } from './webhook.js'

/** What an `authenticate` hook returns: a user id, a user with a tier, or nothing (not signed in). */
export type AuthResult = string | { id: string; tier?: string } | null | undefined

/** A cost per request: a number of requests, or costs per unit such as `{ requests: 1, tokens: 500 }`. */
export type CostOption = number | Costs

/**
 * A cost, or a function that prices each request (it gets the adapter's request object and may
 * be async, e.g. to read a Hono request's JSON body).
 */
export type CostSpec<Req> = CostOption | ((req: Req) => CostOption | Promise<CostOption>)

/** Keys, users and addresses for the deny list (403) or the allow list (not limited). */
export interface AccessList {
  /** Addresses or CIDRs, e.g. "203.0.113.0/24", "2001:db8::/32". */
  ips?: string[]
  /** User ids as `authenticate` (or the trusted user header) gives them. */
  users?: string[]
  /** Key ids, or key hashes (hashApiKey). */
  keys?: string[]
}

/**
 * Options of the HTTP layer, the same for every adapter. All optional: with none, requests are
 * counted per IP in the default "anonymous" tier, in memory.
 *
 * `Req` is the request object the adapter hands to hooks (Express `Request`, Fastify
 * `FastifyRequest`, Hono `Context`, `IncomingMessage`).
 */
export interface SluiceOptions<Req = unknown> {
  /** Where counts live (default: a new MemoryStore for this instance). Share a RedisStore across instances. */
  store?: Store
  /** Prefix of every store key (default "sluice:"). */
  prefix?: string
  /** The tiers (default defaultTiers()). Replaces the defaults; spread defaultTiers() to extend them. */
  tiers?: Record<string, Tier>
  /** Tier of requests identified only by IP (default "anonymous"; must have scope "ip"). */
  anonymousTier?: string
  /** Tier of users whose `authenticate` result names none, and of trusted-header users (default "authenticated"). */
  userTier?: string
  /** API keys: a registry, or config entries holding key hashes. Without it no header is read as a key. */
  keys?: KeyRegistry | KeyConfig[]
  /**
   * Headers that carry API keys, tried in order (default ["x-api-key", "authorization"]).
   * "authorization" means `Authorization: Bearer <key>`. Leave it out when the app uses
   * Authorization for its own tokens (JWTs): otherwise those would be checked as keys and refused.
   */
  apiKeyHeaders?: string[]
  /** The app's own authentication (session, JWT…): the user of a request, or nothing. */
  authenticate?: (req: Req) => AuthResult | Promise<AuthResult>
  /**
   * A header naming the user (e.g. "x-user-id"), believed only when the request comes from a
   * trusted proxy (`trustProxy`) that sets it. From anyone else it is ignored.
   */
  trustedUserHeader?: string
  /** Which peers may set `X-Forwarded-For` / `Forwarded`: false (default), a hop count, or CIDRs. */
  trustProxy?: TrustProxy
  /** The forwarding header the trusted proxies write (default "x-forwarded-for"). */
  forwardedHeader?: 'x-forwarded-for' | 'forwarded'
  /** IPv4 addresses count in groups of this prefix length (default 32). */
  ipv4Subnet?: number
  /** IPv6 addresses count in groups of this prefix length (default 64: one /64 is one client). */
  ipv6Subnet?: number
  /** What one request costs (default 1 request); a function may price each request. */
  cost?: CostSpec<Req>
  /** Header groups to send; false sends none (default: all). */
  headers?: boolean | Partial<HeaderGroups>
  /** Below this share remaining of any limit, the request is at level "warn" (default 0.1). */
  warnAt?: number
  /** Alert once per subject, limit and window when usage crosses this share (default 0.8); false: never. */
  alertAt?: number | false
  /** Block repeat offenders (default on: 10 denials within 1 min → 1 min, 5 min, 15 min, 1 h). */
  block?: BlockOptions | boolean
  /**
   * Per-IP limit on requests with invalid keys (default 10 per 10 min); false turns it off.
   * `store` keeps these counts elsewhere than the core's `store`.
   */
  failedAuth?: { limit?: number; windowMs?: number; store?: Store } | false
  /** Refused with 403, whatever their limits. Never shadowed. */
  deny?: AccessList
  /** Not limited at all (no headers either). The deny list wins over it. */
  allow?: AccessList
  /** Decide, count and log as usual but let every request through (tiers may override). */
  shadow?: boolean
  /** POST alert events (and optionally block events) to this URL, in the background. */
  webhook?: WebhookOptions | string
  /**
   * Abuse detectors (prompt loops, spend spikes, shared keys, slow scraping, failed-key bursts):
   * off unless given; `{}` turns every one on with its defaults (docs/abuse.md).
   */
  detectors?: DetectorsOptions<Req>
  /** Where alert, block and shadow lines go (default: pino to stderr); false: nowhere. */
  logger?: SluiceLogger | false
  /**
   * A concurrency denial reports when leases expire, an upper bound; the wait advertised to
   * clients is capped at this many ms (default 1000).
   */
  concurrencyRetryCapMs?: number
  /**
   * Refusals whose wait is longer than this many ms are answered with `x-should-retry: false`,
   * so that SDKs which honour it (the official openai client) fail at once with the wait in
   * their error instead of sleeping through it (default 60000).
   */
  maxRetryWaitMs?: number
  /** Requests for which this returns true are not limited (e.g. health checks). */
  skip?: (req: Req) => boolean
  /**
   * Levels decided with an identity's own limits in one atomic step, all or nothing (a key's
   * team, its end user): see src/http/levels.ts. Undefined for an identity: its own limits alone.
   */
  levels?: LevelsOf<Identity>
  /** Counts every decision of check() (and 503s when the store is unavailable) in Prometheus metrics. */
  metrics?: SluiceMetrics
}

export interface ResolvedLists {
  ips: IpSet | undefined
  users: ReadonlySet<string>
  keys: ReadonlySet<string>
  empty: boolean
}

const KNOWN_OPTIONS = new Set<string>([
  'store',
  'prefix',
  'tiers',
  'anonymousTier',
  'userTier',
  'keys',
  'apiKeyHeaders',
  'authenticate',
  'trustedUserHeader',
  'levels',
  'trustProxy',
  'forwardedHeader',
  'ipv4Subnet',
  'ipv6Subnet',
  'cost',
  'headers',
  'warnAt',
  'alertAt',
  'block',
  'failedAuth',
  'deny',
  'allow',
  'shadow',
  'webhook',
  'logger',
  'concurrencyRetryCapMs',
  'maxRetryWaitMs',
  'skip',
  'metrics',
  'detectors',
])

const HEADER_NAME = /^[a-z0-9!#$%&'*+.^_`|~-]+$/

/** Refuses anything that is not an options object, and option names that do not exist (typos). */
export function checkOptionNames(options: unknown, extra: readonly string[] = []): void {
  if (options === undefined) return
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new SluiceInputError(`sluice options must be an object, got ${describe(options)}`)
  }
  for (const name of Object.keys(options)) {
    if (!KNOWN_OPTIONS.has(name) && !extra.includes(name)) {
      throw new SluiceInputError(`unknown sluice option ${describe(name)}`)
    }
  }
}

export function checkFunction(value: unknown, what: string): void {
  if (value !== undefined && typeof value !== 'function') {
    throw new SluiceInputError(`${what} must be a function, got ${describe(value)}`)
  }
}

export function checkBoolean(value: unknown, what: string): void {
  if (value !== undefined && typeof value !== 'boolean') {
    throw new SluiceInputError(`${what} must be true or false, got ${describe(value)}`)
  }
}

export function fraction(value: unknown, fallback: number, what: string): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !(value > 0 && value <= 1)) {
    throw new SluiceInputError(`${what} must be a fraction in (0, 1], got ${describe(value)}`)
  }
  return value
}

export function headerName(value: unknown, what: string): string {
  if (typeof value !== 'string' || !HEADER_NAME.test(value.toLowerCase())) {
    throw new SluiceInputError(`${what} must be an HTTP header name, got ${describe(value)}`)
  }
  return value.toLowerCase()
}

export function resolveHeaderGroups(option: unknown): HeaderGroups {
  if (option === undefined || option === true) return { ietf: true, legacy: true, openai: true }
  if (option === false) return { ietf: false, legacy: false, openai: false }
  if (typeof option !== 'object' || option === null) {
    throw new SluiceInputError(
      `headers must be true, false or { ietf, legacy, openai } switches, got ${describe(option)}`,
    )
  }
  const groups: HeaderGroups = { ietf: true, legacy: true, openai: true }
  for (const [name, on] of Object.entries(option)) {
    if (!(name in groups)) {
      throw new SluiceInputError(`headers.${name} is not a header group (ietf, legacy, openai)`)
    }
    checkBoolean(on, `headers.${name}`)
    groups[name as keyof HeaderGroups] = on as boolean
  }
  return groups
}

export function resolveList(option: unknown, what: string): ResolvedLists {
  if (option === undefined) return { ips: undefined, users: new Set(), keys: new Set(), empty: true }
  if (typeof option !== 'object' || option === null) {
    throw new SluiceInputError(`${what} must be { ips, users, keys }, got ${describe(option)}`)
  }
  const o = option as Record<string, unknown>
  for (const name of Object.keys(o)) {
    if (name !== 'ips' && name !== 'users' && name !== 'keys') {
      throw new SluiceInputError(`${what}.${name} is not a list (ips, users, keys)`)
    }
  }
  const strings = (value: unknown, path: string): string[] => {
    if (value === undefined) return []
    if (!Array.isArray(value) || value.some((v) => typeof v !== 'string' || v === '')) {
      throw new SluiceInputError(`${path} must be a list of non-empty strings, got ${describe(value)}`)
    }
    return value as string[]
  }
  const ipList = strings(o.ips, `${what}.ips`)
  const users = new Set(strings(o.users, `${what}.users`))
  const keys = new Set(
    strings(o.keys, `${what}.keys`).map((k) => (/^[0-9A-F]{64}$/i.test(k) ? k.toLowerCase() : k)),
  )
  const ips = ipList.length > 0 ? new IpSet(ipList, `${what}.ips`) : undefined
  return { ips, users, keys, empty: ips === undefined && users.size === 0 && keys.size === 0 }
}

export function resolveKeys(option: unknown): KeyRegistry | undefined {
  if (option === undefined) return undefined
  if (Array.isArray(option)) return new MemoryKeyRegistry(option as KeyConfig[])
  if (typeof option === 'object' && option !== null && typeof (option as KeyRegistry).lookup === 'function') {
    return option as KeyRegistry
  }
  throw new SluiceInputError(
    `keys must be a key registry (with lookup(hash)) or a list of { hash, tier }, got ${describe(option)}`,
  )
}

export function resolveTiers(option: unknown): Record<string, Tier> {
  return option === undefined ? defaultTiers() : validateTiers(option)
}

export function resolveFailedAuth(
  option: unknown,
): { limit: number; windowMs: number; store: Store | undefined } | undefined {
  if (option === false) return undefined
  if (option === undefined) return { limit: 10, windowMs: 600_000, store: undefined }
  if (typeof option !== 'object' || option === null) {
    throw new SluiceInputError(`failedAuth must be { limit, windowMs } or false, got ${describe(option)}`)
  }
  const o = option as { limit?: unknown; windowMs?: unknown; store?: unknown }
  if (o.store !== undefined && typeof (o.store as Partial<Store>).execute !== 'function') {
    throw new SluiceInputError(
      `failedAuth.store must be a MemoryStore, RedisStore or other Store, got ${describe(o.store)}`,
    )
  }
  return {
    limit: o.limit === undefined ? 10 : requirePositiveInteger(o.limit, 'failedAuth.limit'),
    windowMs: o.windowMs === undefined ? 600_000 : requirePositiveInteger(o.windowMs, 'failedAuth.windowMs'),
    store: o.store as Store | undefined,
  }
}

/** A cost as given (a number of requests, or `{ unit: amount }`) as costs per unit; `what` names it in errors. */
export function toCosts(cost: unknown, what: string): Costs {
  if (typeof cost === 'number') {
    if (!Number.isFinite(cost) || cost < 0) {
      throw new SluiceInputError(
        `${what} must be a non-negative number of requests or { unit: amount }, got ${describe(cost)}`,
      )
    }
    return { requests: cost }
  }
  if (typeof cost !== 'object' || cost === null) {
    throw new SluiceInputError(
      `${what} must be a number of requests or { unit: amount }, got ${describe(cost)}`,
    )
  }
  return cost as Costs
}

export { resolveWebhook }

/** The `logger` option: a pino-like logger, false for none, or (undefined) pino on stderr. */
export function resolveLogger(option: unknown): SluiceLogger | undefined {
  if (option === false) return undefined
  if (option === undefined) return pino({ name: 'sluice' }, pino.destination({ dest: 2, sync: true }))
  const logger = option as Partial<SluiceLogger> | null
  if (
    typeof logger !== 'object' ||
    logger === null ||
    typeof logger.warn !== 'function' ||
    typeof logger.info !== 'function'
  ) {
    throw new SluiceInputError(
      `logger must have info() and warn() (a pino logger fits), or be false, got ${describe(option)}`,
    )
  }
  return option as SluiceLogger
}

/** The `store` option, checked to be a Store (undefined when not given). */
export function resolveStore(option: unknown): Store | undefined {
  if (option !== undefined && typeof (option as Partial<Store>).execute !== 'function') {
    throw new SluiceInputError(
      `store must be a MemoryStore, RedisStore or other Store, got ${describe(option)}`,
    )
  }
  return option as Store | undefined
}

/** A positive integer option, or `fallback` when not given. */
export function positiveIntegerOr(value: unknown, fallback: number, what: string): number {
  return value === undefined ? fallback : requirePositiveInteger(value, what)
}

/** The `block` option: true, false or { after, withinMs, durationsMs } (the limiter checks those). */
export function checkBlock(option: unknown): void {
  if (
    option !== undefined &&
    typeof option !== 'boolean' &&
    (typeof option !== 'object' || option === null)
  ) {
    throw new SluiceInputError(
      `block must be true, false or { after, withinMs, durationsMs }, got ${describe(option)}`,
    )
  }
}

/** The `metrics` option, checked to be a SluiceMetrics. */
export function checkMetrics(option: unknown): void {
  if (option !== undefined && typeof (option as Partial<SluiceMetrics>).recordDecision !== 'function') {
    throw new SluiceInputError(`metrics must be a SluiceMetrics, got ${describe(option)}`)
  }
}
