import type { ChangeEvent, ChangeFeed } from './changes.js'
import { withDeadline } from './deadline.js'
import { MAX_KEY_LENGTH, parseKey, secretMatches } from './key-format.js'
import { type KeyCredentials, type KeyInfo, secretOpens } from './key-records.js'

/** Where the cache reads keys: KeyStore in production. */
export interface KeySource {
  credentials(id: string): Promise<KeyCredentials | undefined>
  /** The ids of every key that is not revoked, up to `limit` (for the cache's set of known ids). */
  knownIds?(limit: number): Promise<string[]>
}

export interface KeyCacheOptions {
  /** How long a key read from the database is trusted without a change notice (default 30 s). */
  ttlMs?: number
  /** How long "no such key" is remembered (default 5 s). */
  negativeTtlMs?: number
  /** Keys cached at most; the oldest entry goes first (default 100,000). */
  maxEntries?: number
  /** Unknown ids remembered at most (default 10,000). */
  maxNegative?: number
  /**
   * Database lookups per second for ids the cache does not know to exist (default 50, burst the
   * same). Beyond it such ids are answered as unknown without a query: a spray of random ids
   * costs the database at most this rate.
   */
  missLookupsPerSecond?: number
  /** Known-id set size at most; above it the set is not used and every miss is rate-bounded (1,000,000). */
  maxKnownIds?: number
  /** Longest wait for the database on a lookup (default 1 s); past it the lookup fails. */
  lookupTimeoutMs?: number
  /**
   * Past its TTL a cached key is still answered from memory while it is read again in the
   * background (default false: the lookup waits for the read). The answer is then at most one
   * read late; the hot path never waits on the database for a key it has seen.
   */
  refreshInBackground?: boolean
  /** When the database cannot answer, a cached key keeps working this long past its TTL (default 5 min). */
  staleIfErrorMs?: number
  clock?: () => number
  /** Called for each successful lookup (the last-used recorder). */
  onUsed?: (id: string, now: number) => void
  /** Background failures (a lookup that fell back to a stale entry, the known-id reload). */
  onError?: (error: unknown) => void
}

export interface KeyCacheStats {
  entries: number
  negative: number
  knownIds: number | undefined
  hits: number
  misses: number
  dbLookups: number
  throttled: number
  errors: number
}

/** The database could not say whether the key exists (answer 503, not 401). */
export class KeyLookupUnavailableError extends Error {
  override name = 'KeyLookupUnavailableError'
}

interface Entry {
  credentials: KeyCredentials
  fetchedAt: number
}

interface Opened {
  credentials: KeyCredentials
  /** Which of the record's secrets it is: the previous one works only during the rotation grace. */
  secret: 'current' | 'previous'
}

/**
 * The hot path's view of the keys: a lookup by presented key string answers from memory (at once,
 * without a promise) when the key is cached, and reads the database only for a key not seen
 * within `ttlMs`. The change feed evicts what changed, so a revoked key stops working on every
 * instance within the feed's delay; the TTL is the floor when notices are lost.
 *
 * An attacker spraying random ids gains nothing: malformed keys are refused before any lookup;
 * ids outside the set of known ids (loaded at start, kept by the feed) cost the database at most
 * `missLookupsPerSecond`, and remembered misses are bounded by `maxNegative`.
 */
export class KeyCache {
  private readonly entries = new Map<string, Entry>()
  private readonly negative = new Map<string, number>()
  private readonly inflight = new Map<string, Promise<KeyCredentials | undefined>>()
  /**
   * Presented keys whose secret matched, with the record they matched and which secret: a later
   * request with the same key string and the same cached record skips parsing and hashing (a map
   * lookup, as a key of sluice.yaml costs). Matches only; at most `maxEntries`.
   */
  private readonly opened = new Map<string, Opened>()
  private known: Set<string> | undefined
  private knownLoading: Promise<void> | undefined
  /** Ids announced while the known set was loading: the load may have missed them. */
  private announcedDuringLoad: string[] | undefined
  private tokens: number
  private refilledAt: number
  private counters = { hits: 0, misses: 0, dbLookups: 0, throttled: 0, errors: 0 }
  private readonly unsubscribe: (() => void) | undefined
  private readonly ttlMs: number
  private readonly negativeTtlMs: number
  private readonly maxEntries: number
  private readonly maxNegative: number
  private readonly missRate: number
  private readonly clock: () => number

  constructor(
    private readonly source: KeySource,
    feed: Pick<ChangeFeed, 'subscribe'> | undefined,
    private readonly options: KeyCacheOptions = {},
  ) {
    this.ttlMs = options.ttlMs ?? 30_000
    this.negativeTtlMs = options.negativeTtlMs ?? 5000
    this.maxEntries = options.maxEntries ?? 100_000
    this.maxNegative = options.maxNegative ?? 10_000
    this.missRate = options.missLookupsPerSecond ?? 50
    this.clock = options.clock ?? Date.now
    this.tokens = this.missRate
    this.refilledAt = this.clock()
    this.unsubscribe = feed?.subscribe((event) => this.apply(event))
  }

  /** Loads the set of known ids (call once at start; the feed keeps it current afterwards). */
  async warm(): Promise<void> {
    await this.reloadKnown()
  }

  /**
   * The key a presented `sk-sluice-…` string opens, or undefined (malformed, unknown, wrong
   * secret, revoked, expired). Synchronous when the answer is in memory. Rejects with
   * KeyLookupUnavailableError when the database is needed and cannot answer.
   */
  lookup(presented: string): KeyInfo | undefined | Promise<KeyInfo | undefined> {
    // The common case: this very key string opened the record that is cached now.
    const seen =
      typeof presented === 'string' && presented.length <= MAX_KEY_LENGTH
        ? this.opened.get(presented)
        : undefined
    if (seen !== undefined) {
      const cached = this.entries.get(seen.credentials.info.id)
      if (cached !== undefined && cached.credentials === seen.credentials) {
        const now = this.clock()
        if (now - cached.fetchedAt < this.ttlMs) {
          this.counters.hits++
          return this.opens(seen, now)
        }
      }
    }
    const parsed = parseKey(presented)
    if (parsed === undefined) return undefined
    const now = this.clock()
    const entry = this.entries.get(parsed.id)
    if (entry !== undefined && now - entry.fetchedAt < this.ttlMs) {
      this.counters.hits++
      return this.open(entry.credentials, presented, parsed.secret, now)
    }
    if (
      entry !== undefined &&
      this.options.refreshInBackground &&
      now - entry.fetchedAt < this.ttlMs + (this.options.staleIfErrorMs ?? 300_000)
    ) {
      this.counters.hits++
      this.fetch(parsed.id).catch((error: unknown) => {
        this.counters.errors++
        this.options.onError?.(error)
      })
      return this.open(entry.credentials, presented, parsed.secret, now)
    }
    const negativeUntil = this.negative.get(parsed.id)
    if (negativeUntil !== undefined) {
      if (now < negativeUntil) {
        this.counters.hits++
        return undefined
      }
      this.negative.delete(parsed.id)
    }
    this.counters.misses++
    if (entry === undefined && !this.known?.has(parsed.id) && !this.takeMissToken(now)) {
      this.counters.throttled++
      return undefined
    }
    return this.fetch(parsed.id).then(
      (credentials) =>
        credentials === undefined
          ? undefined
          : this.open(credentials, presented, parsed.secret, this.clock()),
      (error) => {
        this.counters.errors++
        const stale = this.entries.get(parsed.id)
        const staleLimit = this.ttlMs + (this.options.staleIfErrorMs ?? 300_000)
        if (stale !== undefined && this.clock() - stale.fetchedAt < staleLimit) {
          this.options.onError?.(error)
          return this.open(stale.credentials, presented, parsed.secret, this.clock())
        }
        if (this.known !== undefined && !this.known.has(parsed.id)) return undefined
        throw new KeyLookupUnavailableError('the key database did not answer', { cause: error })
      },
    )
  }

  /** Forgets one key (the change feed calls this for every changed key). */
  invalidate(id: string): void {
    this.entries.delete(id)
    this.negative.delete(id)
    this.inflight.delete(id)
    // It may have just been created: let the next lookup read it, whatever the miss budget.
    this.known?.add(id)
    this.announcedDuringLoad?.push(id)
  }

  /** Forgets everything, and reloads the known ids. */
  clear(): void {
    this.entries.clear()
    this.opened.clear()
    this.negative.clear()
    this.inflight.clear()
    void this.reloadKnown().catch(() => {})
  }

  stats(): KeyCacheStats {
    return {
      entries: this.entries.size,
      negative: this.negative.size,
      knownIds: this.known?.size,
      ...this.counters,
    }
  }

  close(): void {
    this.unsubscribe?.()
  }

  private apply(event: ChangeEvent): void {
    if (event.kind === 'key') this.invalidate(event.id)
    else if (event.kind === 'all') this.clear()
    // Team and user changes do not change a key's record: the gateway's own caches handle them.
  }

  /**
   * Whether `secret` (of the key string `presented`) opens the key now. A key string that matched
   * once is remembered with the record it matched (matches only): the next requests with it cost
   * a map lookup instead of a SHA-256. A new record (a change, a reload) starts with none
   * remembered; the status, expiry and rotation grace are checked every time.
   */
  private open(
    credentials: KeyCredentials,
    presented: string,
    secret: string,
    now: number,
  ): KeyInfo | undefined {
    const seen = this.opened.get(presented)
    if (seen !== undefined && seen.credentials === credentials) return this.opens(seen, now)
    if (!secretOpens(credentials, secret, now)) return undefined
    if (this.opened.size >= this.maxEntries) this.opened.clear()
    const opened: Opened = {
      credentials,
      secret: secretMatches(secret, credentials.secretHash) ? 'current' : 'previous',
    }
    this.opened.set(presented, opened)
    return this.opens(opened, now)
  }

  /** A key string known to match `credentials`: whether the record lets it in now. */
  private opens({ credentials, secret }: Opened, now: number): KeyInfo | undefined {
    if (credentials.revokedAt !== null) return undefined
    if (credentials.expiresAt !== null && now >= credentials.expiresAt) return undefined
    if (
      secret === 'previous' &&
      !(credentials.previousExpiresAt !== null && now < credentials.previousExpiresAt)
    )
      return undefined
    this.options.onUsed?.(credentials.info.id, now)
    return credentials.info
  }

  private fetch(id: string): Promise<KeyCredentials | undefined> {
    const running = this.inflight.get(id)
    if (running !== undefined) return running
    this.counters.dbLookups++
    const promise = withDeadline(
      this.source.credentials(id),
      this.options.lookupTimeoutMs ?? 1000,
      'a key lookup',
    ).then((credentials) => {
      // Store only if no change notice arrived meanwhile (it would have removed this promise).
      if (this.inflight.get(id) === promise) {
        this.inflight.delete(id)
        this.store(id, credentials)
      }
      return credentials
    })
    promise.catch(() => {
      if (this.inflight.get(id) === promise) this.inflight.delete(id)
    })
    this.inflight.set(id, promise)
    return promise
  }

  private store(id: string, credentials: KeyCredentials | undefined): void {
    const now = this.clock()
    if (credentials === undefined) {
      this.entries.delete(id)
      this.known?.delete(id)
      if (this.negative.size >= this.maxNegative) this.negative.delete(this.negative.keys().next().value!)
      this.negative.set(id, now + this.negativeTtlMs)
      return
    }
    if (credentials.revokedAt === null) this.known?.add(id)
    else this.known?.delete(id)
    this.entries.delete(id) // re-inserted last: eviction goes by age of the fetch
    if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value!)
    this.entries.set(id, { credentials, fetchedAt: now })
  }

  private takeMissToken(now: number): boolean {
    const elapsed = Math.max(0, now - this.refilledAt) / 1000
    this.refilledAt = now
    this.tokens = Math.min(this.missRate, this.tokens + elapsed * this.missRate)
    if (this.tokens < 1) return false
    this.tokens -= 1
    return true
  }

  private reloadKnown(): Promise<void> {
    if (this.source.knownIds === undefined) return Promise.resolve()
    this.knownLoading ??= (async () => {
      const limit = this.options.maxKnownIds ?? 1_000_000
      this.announcedDuringLoad = []
      try {
        const ids = await this.source.knownIds!(limit + 1)
        const known = ids.length > limit ? undefined : new Set(ids)
        for (const id of this.announcedDuringLoad) known?.add(id)
        this.known = known
      } catch (error) {
        this.options.onError?.(error)
        throw error
      } finally {
        this.knownLoading = undefined
        this.announcedDuringLoad = undefined
      }
    })()
    return this.knownLoading
  }
}
