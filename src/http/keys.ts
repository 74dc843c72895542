import * as crypto from 'node:crypto'
import { describe, SluiceInputError } from '../core/errors.js'
import type { LimitDefinition } from '../core/limits.js'
import type { TierQueue } from './tiers.js'

/** Every key sluice issues starts with this, so secret scanners can find leaked ones. */
export const API_KEY_PREFIX = 'sk-sluice-'

/**
 * A new API key: `sk-sluice-` followed by 43 URL-safe characters (32 random bytes, 256 bits).
 * Show it to its owner once and keep only hashApiKey(key).
 */
export function generateApiKey(): string {
  return API_KEY_PREFIX + crypto.randomBytes(32).toString('base64url')
}

/** Characters of a key (after `sk-sluice-`) that make its prefix: a database key's public id. */
export const KEY_PREFIX_LENGTH = 10

/**
 * The prefix of a presented key, grouping failed keys that share it: the first
 * KEY_PREFIX_LENGTH characters after `sk-sluice-` (a database key's public id), or of the key.
 * Undefined for a key too short to keep most of it unshown (shorter than 3× the prefix).
 */
export function keyPrefixOf(key: string): string | undefined {
  const rest = key.startsWith(API_KEY_PREFIX) ? key.slice(API_KEY_PREFIX.length) : key
  if (rest.length < 3 * KEY_PREFIX_LENGTH) return undefined
  return rest.slice(0, KEY_PREFIX_LENGTH)
}

/**
 * Node's one-shot digest (20.12 and later): without the Hash object createHash makes, it takes
 * less than half the time, and every request with a key hashes it.
 */
const oneShot = (crypto as { hash?: (algorithm: string, data: string, encoding: 'hex') => string }).hash

/** The SHA-256 of a key as 64 lowercase hex digits: what registries store and look up. */
export function hashApiKey(key: string): string {
  if (typeof key !== 'string' || key === '') {
    throw new SluiceInputError(`hashApiKey needs a non-empty string, got ${describe(key)}`)
  }
  if (oneShot !== undefined) return oneShot('sha256', key, 'hex')
  return crypto.createHash('sha256').update(key, 'utf8').digest('hex')
}

/** What a registry knows about a key. Never the key itself. */
export interface KeyRecord {
  /** Stable public id, used in subjects (`key:<id>`), logs and deny lists. */
  id: string
  /** The tier whose limits the key gets. */
  tier: string
  /** Replaces (by name) or adds limits of the tier for this key only. */
  limits?: Record<string, LimitDefinition>
  /**
   * Queue settings over the tier's `queue`, field by field (docs/queueing.md); `maxWaitMs: 0`
   * turns waiting off for this key.
   */
  queue?: Partial<TierQueue>
  /** For tiers counted per user: the user this key belongs to (otherwise the key counts alone). */
  user?: string
  name?: string
  /** A revoked key is refused with 401 exactly like an unknown one. */
  revoked?: boolean
  /**
   * The team that owns the key (keys from the control plane). The gateway decides the team's
   * limits with the key's in one atomic step (the `levels` option, src/http/levels.ts).
   */
  team?: string
}

/** Looks keys up by their hash (hashApiKey). May be backed by a database: lookups may be async. */
export interface KeyRegistry {
  lookup(hash: string): KeyRecord | undefined | Promise<KeyRecord | undefined>
  /**
   * The identity step's resolver, when the registry needs the presented key itself (keys of the
   * form `sk-sluice-<id>-<secret>` are found by their public id, then their secret is checked):
   * used instead of `lookup` when present. It may throw when the registry cannot answer (503).
   */
  resolve?(key: string, hash: string): KeyRecord | undefined | Promise<KeyRecord | undefined>
}

/** A registry entry as written in config: the hash, never the key. */
export interface KeyConfig {
  /** hashApiKey(key): 64 hex digits. */
  hash: string
  tier: string
  /** Defaults to the first 16 hex digits of the hash. */
  id?: string
  name?: string
  user?: string
  limits?: Record<string, LimitDefinition>
  revoked?: boolean
}

const HASH = /^[0-9a-f]{64}$/
const KEY_ID = /^[A-Za-z0-9_.-]{1,64}$/

/** The public id of a key with this hash, when none is configured. */
export function keyIdOf(hash: string): string {
  return hash.slice(0, 16)
}

/** An in-memory registry built from config entries holding hashes. */
export class MemoryKeyRegistry implements KeyRegistry {
  private readonly byHash = new Map<string, KeyRecord>()

  constructor(entries: readonly KeyConfig[] = []) {
    if (!Array.isArray(entries)) {
      throw new SluiceInputError(`keys must be a list of { hash, tier }, got ${describe(entries)}`)
    }
    entries.forEach((entry, i) => {
      this.add(entry, `keys[${i}]`)
    })
  }

  /** Adds or replaces a key. `what` names the entry in errors. */
  add(entry: KeyConfig, what = 'key'): KeyRecord {
    if (typeof entry !== 'object' || entry === null) {
      throw new SluiceInputError(`${what} must be an object { hash, tier }, got ${describe(entry)}`)
    }
    const hash = typeof entry.hash === 'string' ? entry.hash.toLowerCase() : entry.hash
    if (typeof hash !== 'string' || !HASH.test(hash)) {
      throw new SluiceInputError(
        `${what}.hash must be hashApiKey(key): 64 hex digits (never the key itself), got ${describe(entry.hash)}`,
      )
    }
    if (typeof entry.tier !== 'string' || entry.tier === '') {
      throw new SluiceInputError(`${what}.tier must name a tier, got ${describe(entry.tier)}`)
    }
    const id = entry.id ?? keyIdOf(hash)
    if (typeof id !== 'string' || !KEY_ID.test(id)) {
      throw new SluiceInputError(
        `${what}.id must be 1-64 letters, digits, "_", "-" or ".", got ${describe(entry.id)}`,
      )
    }
    if (entry.user !== undefined && (typeof entry.user !== 'string' || entry.user === '')) {
      throw new SluiceInputError(`${what}.user must be a non-empty string, got ${describe(entry.user)}`)
    }
    if (entry.limits !== undefined && (typeof entry.limits !== 'object' || entry.limits === null)) {
      throw new SluiceInputError(`${what}.limits must be an object of limits, got ${describe(entry.limits)}`)
    }
    if (entry.revoked !== undefined && typeof entry.revoked !== 'boolean') {
      throw new SluiceInputError(`${what}.revoked must be true or false, got ${describe(entry.revoked)}`)
    }
    const record: KeyRecord = { id, tier: entry.tier }
    if (entry.name !== undefined) record.name = String(entry.name)
    if (entry.user !== undefined) record.user = entry.user
    if (entry.limits !== undefined) record.limits = entry.limits
    if (entry.revoked) record.revoked = true
    this.byHash.set(hash, record)
    return record
  }

  /** Marks a key revoked; true when it was known. */
  revoke(hash: string): boolean {
    const record = this.byHash.get(hash.toLowerCase())
    if (record === undefined) return false
    record.revoked = true
    return true
  }

  lookup(hash: string): KeyRecord | undefined {
    return this.byHash.get(hash)
  }

  /** Every record (for validation against the tiers and for listing). */
  records(): IterableIterator<KeyRecord> {
    return this.byHash.values()
  }
}
