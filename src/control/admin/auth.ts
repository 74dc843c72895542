/**
 * The admin token: how it is configured (the token, or only its SHA-256), read from a request,
 * compared in constant time, and the failed-attempt limit per client address.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import ipaddr from 'ipaddr.js'
import { SluiceInputError } from '../../core/errors.js'
import { slidingWindow } from '../../core/limits.js'
import { Limiter } from '../../limiter.js'
import { MemoryStore } from '../../store/memory.js'

/** Generated tokens look like API keys, so secret scanners and the gateway's log scrubber catch them. */
export const ADMIN_TOKEN_PREFIX = 'sk-sluice-admin-'
/** A shorter token is refused at start-up: the admin API would be one guess away. */
export const MIN_ADMIN_TOKEN_LENGTH = 16
/** Longer presented tokens are wrong without being hashed. */
const MAX_PRESENTED_LENGTH = 1024
const HEX_SHA256 = /^[0-9a-fA-F]{64}$/

/** How the admin API knows its token: the token itself, or only its SHA-256 (64 hex digits). */
export interface AdminTokenOptions {
  token?: string
  tokenHash?: string
}

/** SHA-256 of a token as 64 lowercase hex digits: what `admin.tokenHash` in sluice.yaml holds. */
export function hashAdminToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex')
}

/** A new admin token (256 random bits) and the hash to configure instead of it. */
export function generateAdminToken(): { token: string; tokenHash: string } {
  const token = `${ADMIN_TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`
  return { token, tokenHash: hashAdminToken(token) }
}

/**
 * The digest presented tokens are compared with, or undefined when no token is configured (the
 * admin API is then off). A token too short or a malformed hash is a start-up error that names the
 * option, never prints its value.
 */
export function expectedDigest(options: AdminTokenOptions | undefined): Buffer | undefined {
  const token = options?.token
  const tokenHash = options?.tokenHash
  if (token !== undefined && tokenHash !== undefined) {
    throw new SluiceInputError('admin auth: give the token or its tokenHash, not both')
  }
  if (token !== undefined) {
    if (typeof token !== 'string' || token.trim().length < MIN_ADMIN_TOKEN_LENGTH) {
      throw new SluiceInputError(
        `admin auth: the token must be at least ${MIN_ADMIN_TOKEN_LENGTH} characters (generate one with generateAdminToken())`,
      )
    }
    return createHash('sha256').update(token, 'utf8').digest()
  }
  if (tokenHash !== undefined) {
    if (typeof tokenHash !== 'string' || !HEX_SHA256.test(tokenHash)) {
      throw new SluiceInputError('admin auth: tokenHash must be 64 hex digits (the SHA-256 of the token)')
    }
    return Buffer.from(tokenHash, 'hex')
  }
  return undefined
}

/** The token of an `Authorization: Bearer <token>` header; undefined when absent or malformed. */
export function bearerToken(header: string | string[] | undefined): string | undefined {
  if (typeof header !== 'string' || header.length > MAX_PRESENTED_LENGTH + 20) return undefined
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header)
  return match?.[1]
}

/** Compares the digests in constant time: the time taken says nothing about the token. */
export function tokenMatches(presented: string | undefined, expected: Buffer): boolean {
  if (presented === undefined || presented.length > MAX_PRESENTED_LENGTH) return false
  return timingSafeEqual(createHash('sha256').update(presented, 'utf8').digest(), expected)
}

export interface AuthLockout {
  lockedOut: boolean
  /** When locked out: how long until the address may try again. */
  retryAfterMs: number
}

/**
 * Counts wrong or missing admin tokens per client address. The gateway may pass its own (shared
 * through Redis by every instance); the default is in-process.
 */
export interface AdminAuthFailures {
  /** A wrong or missing token came from `ip`: count it; is the address locked out now? */
  onAuthFailure(ip: string): AuthLockout | Promise<AuthLockout>
  /**
   * Is `ip` locked out already? Asked before the token is compared, so that a locked-out address
   * gets 429 whatever it sends and a guesser cannot tell a right guess from a wrong one.
   */
  isLockedOut?(ip: string): AuthLockout | Promise<AuthLockout>
  close?(): void | Promise<void>
}

/**
 * The group an address is counted in: IPv4 as is, IPv6 by its /64 (one host usually holds a whole
 * /64, and would otherwise get 2^64 fresh counters).
 */
export function addressGroup(ip: string): string {
  if (!ipaddr.isValid(ip)) return ip.slice(0, 64)
  const address = ipaddr.process(ip)
  if (address.kind() === 'ipv4') return address.toString()
  const parts = (address as ipaddr.IPv6).parts.slice(0, 4)
  return `${parts.map((p) => p.toString(16)).join(':')}::/64`
}

/**
 * The default failed-auth limit: `limit` failures per `windowMs` per address group (default 10
 * per 10 minutes), an exact sliding window on sluice's own Limiter over a MemoryStore. Per process: with
 * several gateway instances give the gateway's shared limiter instead.
 */
export function inProcessAuthFailures(
  options: { limit?: number; windowMs?: number } = {},
): AdminAuthFailures {
  const store = new MemoryStore({ maxKeys: 100_000 })
  const limiter = new Limiter({
    store,
    policy: '_admin_auth',
    // Exact (a log of the failures: `limit` entries at most per address). The two-window counter
    // would keep an address out for up to two windows; this lets it in as its oldest failure ages out.
    limits: {
      failures: slidingWindow({
        limit: options.limit ?? 10,
        windowMs: options.windowMs ?? 600_000,
        exact: true,
      }),
    },
    hashSubjects: true,
  })
  const subject = (ip: string) => `ip:${addressGroup(ip)}`
  return {
    async isLockedOut(ip) {
      const d = await limiter.peek(subject(ip), { requests: 1 })
      return { lockedOut: !d.allowed, retryAfterMs: d.retryAfterMs }
    },
    async onAuthFailure(ip) {
      const d = await limiter.consume(subject(ip), { requests: 1 })
      return { lockedOut: !d.allowed, retryAfterMs: d.retryAfterMs }
    },
    close: () => store.close(),
  }
}
