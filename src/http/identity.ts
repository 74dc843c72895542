/**
 * Who a request is, most specific first: API key (from `apiKeyHeaders`, checked against the
 * registry) > user (`authenticate`, or `trustedUserHeader` from a trusted proxy) > IP (ip.ts) —
 * and the answers owed before any limit: a bad key (401, counted against the address's failed-auth
 * limit), a failed-auth lockout (429), the deny list (403). The allow list is read here too.
 */
import type { EventEmitter } from 'node:events'
import { describe, SluiceInputError } from '../core/errors.js'
import { slidingWindow } from '../core/limits.js'
import { type Decision, Limiter } from '../limiter.js'
import type { Store } from '../store/types.js'
import { MALFORMED_KEY, readApiKey } from './api-key.js'
import type { IdentityKind, SluiceEvents, SluiceLogger } from './events.js'
import { addRetryHeaders } from './headers.js'
import { type ClientIp, IpResolver } from './ip.js'
import { KeyHashes } from './key-hashes.js'
import { type KeyRecord, type KeyRegistry, keyPrefixOf, MemoryKeyRegistry } from './keys.js'
import {
  type AuthResult,
  checkFunction,
  headerName,
  type ResolvedLists,
  resolveFailedAuth,
  resolveKeys,
  resolveList,
  type SluiceOptions,
} from './options.js'
import type { Policies } from './policies.js'
import { headerOf, type RequestLike } from './request.js'
import { authLockoutBody, type ErrorBody, forbiddenBody, invalidKeyBody } from './responses.js'
import type { TierScope } from './tiers.js'

/** Who a request counts as, and in which tier. */
export interface Identity {
  kind: IdentityKind
  /** What the tier's limits count: `ip:<address or prefix>`, `user:<id>` or `key:<key id>`. */
  subject: string
  tier: string
  scope: TierScope
  /** The client address as resolved (undefined when the socket address is unknown). */
  ip: string | undefined
  /** The address's bucket, e.g. "2001:db8:1:2::/64". */
  ipGroup: string | undefined
  userId?: string
  keyId?: string
  /** hashApiKey(key): safe to log; the key itself is never kept. */
  keyHash?: string
  key?: KeyRecord
}

/** A request that must be answered now, before any limit: bad key, failed-auth lockout, deny list. */
export interface Refusal {
  status: 401 | 403 | 429
  reason: 'invalid_api_key' | 'auth_lockout' | 'deny_list'
  headers: Record<string, string>
  body: ErrorBody
}

/** The outcome of identify(): an identity, or a refusal; allow-listed identities skip limiting. */
export interface Identification {
  identity: Identity | undefined
  refusal: Refusal | undefined
  allowListed: boolean
}

export interface IdentifierOptions<Req> {
  policies: Policies
  anonymousTier: string
  userTier: string
  ip: IpResolver
  keys: KeyRegistry | undefined
  apiKeyHeaders: readonly string[]
  authenticate: ((req: Req) => AuthResult | Promise<AuthResult>) | undefined
  trustedUserHeader: string | undefined
  failedAuth: Limiter | undefined
  deny: ResolvedLists
  allow: ResolvedLists
  events: EventEmitter<SluiceEvents>
  logger: SluiceLogger | undefined
}

/** The identity options of SluiceOptions, checked: what an Identifier needs besides the tiers, events and logger. */
export type ResolvedIdentity<Req> = Pick<
  IdentifierOptions<Req>,
  'ip' | 'keys' | 'apiKeyHeaders' | 'authenticate' | 'trustedUserHeader' | 'failedAuth' | 'deny' | 'allow'
>

/**
 * Checks and resolves the identity options (addresses and proxies, keys, key headers,
 * `authenticate`, the trusted user header, failed-auth counting, deny and allow lists); throws
 * SluiceInputError naming the option. Keys of a registry given as a list are checked against the tiers.
 */
export function resolveIdentity<Req>(
  o: SluiceOptions<Req>,
  policies: Policies,
  store: Store,
): ResolvedIdentity<Req> {
  const ip = new IpResolver({
    trustProxy: o.trustProxy,
    forwardedHeader: o.forwardedHeader,
    ipv4Subnet: o.ipv4Subnet,
    ipv6Subnet: o.ipv6Subnet,
  })
  const keys = resolveKeys(o.keys)
  if (keys instanceof MemoryKeyRegistry) {
    for (const record of keys.records()) policies.keyTier(record)
  }
  const headers = o.apiKeyHeaders ?? ['x-api-key', 'authorization']
  if (!Array.isArray(headers) || headers.length === 0) {
    throw new SluiceInputError(
      `apiKeyHeaders must be a non-empty list of header names, got ${describe(headers)}`,
    )
  }
  const apiKeyHeaders = headers.map((h, i) => headerName(h, `apiKeyHeaders[${i}]`))
  checkFunction(o.authenticate, 'authenticate')
  let trustedUserHeader: string | undefined
  if (o.trustedUserHeader !== undefined) {
    trustedUserHeader = headerName(o.trustedUserHeader, 'trustedUserHeader')
    if (!ip.trustsProxies) {
      throw new SluiceInputError(
        'trustedUserHeader needs trustProxy: the header is believed only from a trusted proxy, and none is configured',
      )
    }
  }
  const failed = resolveFailedAuth(o.failedAuth)
  const failedAuth =
    failed &&
    new Limiter({
      store: failed.store ?? store,
      policy: '_auth',
      prefix: o.prefix,
      limits: { failures: slidingWindow({ limit: failed.limit, windowMs: failed.windowMs }) },
    })
  const deny = resolveList(o.deny, 'deny')
  const allow = resolveList(o.allow, 'allow')
  const authenticate = o.authenticate
  return { ip, keys, apiKeyHeaders, authenticate, trustedUserHeader, failedAuth, deny, allow }
}

const USER_ID_MAX = 256
/** The subject of requests whose address cannot be told. */
const UNKNOWN_IP = 'ip:unknown'

export class Identifier<Req> {
  private warnedNoAddress = false
  /** The hashes of keys that opened a record lately (a client sends its key call after call). */
  readonly keyHashes = new KeyHashes()

  constructor(private readonly o: IdentifierOptions<Req>) {}

  /**
   * Identifies a request; at once when every step can (no key registry call, no asynchronous
   * `authenticate`), else a promise. `hookArg` is handed to `authenticate`.
   */
  identify(req: RequestLike, hookArg: Req): Identification | Promise<Identification> {
    const { ip, deny, allow } = this.o
    const forwarded = ip.trustsProxies ? headerOf(req.headers, ip.header) : undefined
    const client = ip.resolve(req.remoteAddress, forwarded)
    if (client === undefined && !this.warnedNoAddress) {
      this.warnedNoAddress = true
      this.o.logger?.warn(
        { remoteAddress: req.remoteAddress },
        'sluice cannot tell the client address of a request: such requests share the bucket "ip:unknown"',
      )
    }
    let allowListed = false
    if (client !== undefined) {
      if (deny.ips?.has(client.parsed)) return this.denyListed(client.subject, client)
      if (allow.ips?.has(client.parsed)) allowListed = true
    }
    if (this.o.keys !== undefined) {
      const key = readApiKey(req.headers, this.o.apiKeyHeaders)
      if (key !== undefined) return this.identifyKey(key, client, allowListed)
    }
    const authenticate = this.o.authenticate
    if (authenticate !== undefined) {
      const auth = authenticate(hookArg)
      if (isThenable(auth))
        return Promise.resolve(auth).then((a) => this.identifyUser(a, req, client, allowListed))
      return this.identifyUser(auth, req, client, allowListed)
    }
    return this.identifyUser(undefined, req, client, allowListed)
  }

  private async identifyKey(
    key: string | typeof MALFORMED_KEY,
    client: ClientIp | undefined,
    ipAllowListed: boolean,
  ): Promise<Identification> {
    const { deny, allow, failedAuth } = this.o
    const hash = key === MALFORMED_KEY ? '' : this.keyHashes.of(key)
    const ipSubject = client?.subject ?? UNKNOWN_IP
    // A valid key is never held up by its address's failed-auth count: that would cost a store
    // call on every keyed request and lock out good clients behind the same NAT as a guesser.
    const keys = this.o.keys!
    const record =
      hash === ''
        ? undefined
        : await (keys.resolve !== undefined ? keys.resolve(key as string, hash) : keys.lookup(hash))
    const valid = record !== undefined && !record.revoked
    if (!valid) {
      const failure = failedAuth && (await failedAuth.consume(ipSubject))
      const lockedOut = failure !== undefined && !failure.allowed
      const prefix = key === MALFORMED_KEY ? undefined : keyPrefixOf(key)
      this.o.events.emit('authFailure', {
        ip: client?.ip ?? 'unknown',
        group: client?.group ?? 'unknown',
        lockedOut,
        ...(prefix !== undefined && { keyPrefix: prefix }),
      })
      if (lockedOut) return { identity: undefined, refusal: lockout(failure), allowListed: false }
      return {
        identity: undefined,
        refusal: {
          status: 401,
          reason: 'invalid_api_key',
          headers: { 'www-authenticate': 'Bearer' },
          body: invalidKeyBody(),
        },
        allowListed: false,
      }
    }
    this.keyHashes.remember(key as string, hash)
    const tier = this.o.policies.keyTier(record)
    const keyId = record.id
    const userId = record.user
    const identity: Identity = {
      kind: 'key',
      subject: subjectFor(tier.scope, client, userId, keyId),
      tier: tier.name,
      scope: tier.scope,
      ip: client?.ip,
      ipGroup: client?.group,
      keyId,
      keyHash: hash,
      key: record,
    }
    if (userId !== undefined) identity.userId = userId
    if (deny.keys.has(keyId) || deny.keys.has(hash) || (userId !== undefined && deny.users.has(userId))) {
      return this.denyListed(identity.subject, client, identity)
    }
    const allowListed =
      ipAllowListed ||
      allow.keys.has(keyId) ||
      allow.keys.has(hash) ||
      (userId !== undefined && allow.users.has(userId))
    return { identity, refusal: undefined, allowListed }
  }

  private identifyUser(
    auth: AuthResult,
    req: RequestLike,
    client: ClientIp | undefined,
    ipAllowListed: boolean,
  ): Identification {
    const { policies, trustedUserHeader } = this.o
    let userId: string | undefined
    let tierName = this.o.userTier
    if (auth !== undefined && auth !== null) {
      if (typeof auth === 'string') {
        userId = auth
      } else if (typeof auth === 'object' && typeof auth.id === 'string') {
        userId = auth.id
        if (auth.tier !== undefined) tierName = auth.tier
      }
      if (userId === undefined || userId === '') {
        throw new SluiceInputError(
          `authenticate() must return a user id, { id, tier? } or nothing, got ${describe(auth)}`,
        )
      }
    } else if (trustedUserHeader !== undefined && client?.fromTrustedProxy) {
      const value = headerOf(req.headers, trustedUserHeader)?.trim()
      if (value !== undefined && value !== '' && value.length <= USER_ID_MAX) userId = value
    }
    if (userId === undefined) {
      const tier = policies.tier(this.o.anonymousTier)!
      const identity: Identity = {
        kind: 'ip',
        subject: client?.subject ?? UNKNOWN_IP,
        tier: tier.name,
        scope: tier.scope,
        ip: client?.ip,
        ipGroup: client?.group,
      }
      return { identity, refusal: undefined, allowListed: ipAllowListed }
    }
    const tier = policies.tier(tierName)
    if (tier === undefined) {
      throw new SluiceInputError(
        `authenticate() gave tier ${describe(tierName)}, which is not among the tiers (${policies.names()})`,
      )
    }
    const identity: Identity = {
      kind: 'user',
      subject: subjectFor(tier.scope, client, userId, undefined),
      tier: tier.name,
      scope: tier.scope,
      ip: client?.ip,
      ipGroup: client?.group,
      userId,
    }
    if (this.o.deny.users.has(userId)) return this.denyListed(identity.subject, client, identity)
    return { identity, refusal: undefined, allowListed: ipAllowListed || this.o.allow.users.has(userId) }
  }

  private denyListed(subject: string, client: ClientIp | undefined, identity?: Identity): Identification {
    this.o.events.emit('deny', { subject, ip: client?.ip ?? 'unknown', reason: 'deny_list' })
    return {
      identity,
      refusal: { status: 403, reason: 'deny_list', headers: {}, body: forbiddenBody() },
      allowListed: false,
    }
  }
}

function isThenable(value: unknown): value is PromiseLike<AuthResult> {
  return typeof (value as { then?: unknown } | null)?.then === 'function'
}

function subjectFor(
  scope: TierScope,
  client: ClientIp | undefined,
  userId: string | undefined,
  keyId: string | undefined,
): string {
  if (scope === 'ip') return client?.subject ?? UNKNOWN_IP
  if (scope === 'user' && userId !== undefined) return `user:${userId}`
  if (keyId !== undefined) return `key:${keyId}`
  return `user:${userId}`
}

function lockout(decision: Decision): Refusal {
  const headers: Record<string, string> = {}
  addRetryHeaders(headers, decision.retryAfterMs, false)
  return { status: 429, reason: 'auth_lockout', headers, body: authLockoutBody(decision.retryAfterMs) }
}
