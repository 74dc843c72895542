import { describe, expect, it } from 'vitest'
import type { ChangeEvent, ChangeListener } from '../../src/control/changes.js'
import { KeyCache, KeyLookupUnavailableError, type KeySource } from '../../src/control/key-cache.js'
import { formatKey, generatePublicId, generateSecret, hashSecret } from '../../src/control/key-format.js'
import type { KeyCredentials, KeyInfo } from '../../src/control/key-records.js'

/**
 * The cache's own logic (TTL, eviction, the miss budget, stale answers during an outage) against
 * an in-memory key source that counts its reads. The same cache over real SQLite and PostgreSQL,
 * evicted by the real change feed, is in the contract suite (changes-migrations.ts).
 */
function source() {
  const keys = new Map<string, KeyCredentials>()
  let reads = 0
  let failing = false
  const src: KeySource = {
    async credentials(id) {
      reads++
      if (failing) throw new Error('database down')
      return keys.get(id)
    },
    async knownIds() {
      return [...keys.values()].filter((k) => k.revokedAt === null).map((k) => k.info.id)
    },
  }
  return {
    src,
    reads: () => reads,
    fail: (on: boolean) => {
      failing = on
    },
    add(patch: Partial<KeyCredentials> = {}) {
      const id = generatePublicId()
      const secret = generateSecret()
      const info = { id, name: id, tier: 'service' } as KeyInfo
      keys.set(id, {
        info,
        secretHash: hashSecret(secret),
        previousSecretHash: null,
        previousExpiresAt: null,
        expiresAt: null,
        revokedAt: null,
        ...patch,
      })
      return { id, key: formatKey(id, secret) }
    },
    set(id: string, patch: Partial<KeyCredentials>) {
      keys.set(id, { ...keys.get(id)!, ...patch })
    },
  }
}

function feed() {
  const listeners = new Set<ChangeListener>()
  return {
    subscribe(l: ChangeListener) {
      listeners.add(l)
      return () => listeners.delete(l)
    },
    emit(e: ChangeEvent) {
      for (const l of listeners) l(e)
    },
  }
}

describe('KeyCache', () => {
  it('answers a cached key at once, without a promise or a read, until its TTL', async () => {
    const s = source()
    let now = 1_000_000
    const used: string[] = []
    const cache = new KeyCache(s.src, undefined, {
      clock: () => now,
      ttlMs: 1000,
      onUsed: (id) => used.push(id),
    })
    const k = s.add()
    expect((await cache.lookup(k.key))?.id).toBe(k.id)
    expect(s.reads()).toBe(1)
    const hit = cache.lookup(k.key)
    expect(hit).not.toBeInstanceOf(Promise)
    expect((hit as KeyInfo).id).toBe(k.id)
    expect(cache.lookup(`${k.key.slice(0, -1)}${k.key.endsWith('_') ? 'A' : '_'}`)).toBeUndefined() // wrong secret: no read either
    expect(s.reads()).toBe(1)
    now += 1000
    await cache.lookup(k.key)
    expect(s.reads()).toBe(2)
    expect(used).toEqual([k.id, k.id, k.id])
  })

  it('refuses malformed keys without a read', async () => {
    const s = source()
    const cache = new KeyCache(s.src, undefined)
    for (const bad of ['', 'sk-sluice-', 'Bearer x', 'x'.repeat(100_000), 'sk-sluice-aaaaaaaaaa-short']) {
      expect(cache.lookup(bad)).toBeUndefined()
    }
    expect(s.reads()).toBe(0)
  })

  it('evicts a changed key on notice, and checks expiry and revocation on every use', async () => {
    const s = source()
    const f = feed()
    let now = 1_000_000
    const cache = new KeyCache(s.src, f, { clock: () => now, ttlMs: 3_600_000 })
    const k = s.add({ expiresAt: now + 5000 })
    expect(await cache.lookup(k.key)).toBeDefined()
    now += 5000
    expect(cache.lookup(k.key)).toBeUndefined() // expired while cached
    s.set(k.id, { expiresAt: null, revokedAt: now })
    expect(cache.lookup(k.key)).toBeUndefined()
    s.set(k.id, { revokedAt: null })
    expect(cache.lookup(k.key)).toBeUndefined() // still the cached (expired) record
    f.emit({ kind: 'key', id: k.id })
    expect((await cache.lookup(k.key))?.id).toBe(k.id)
    f.emit({ kind: 'all' })
    expect(cache.stats().entries).toBe(0)
  })

  it('remembers a key string that opened a record only with that record: rotation and grace apply', async () => {
    const s = source()
    const f = feed()
    let now = 1_000_000
    const cache = new KeyCache(s.src, f, { clock: () => now, ttlMs: 3_600_000 })
    const k = s.add()
    expect((await cache.lookup(k.key))?.id).toBe(k.id)
    // The same string again is not hashed again: it opens the record it opened, whatever its hash now.
    const cached = await s.src.credentials(k.id)
    const hash = cached!.secretHash
    cached!.secretHash = '0'.repeat(64)
    expect((cache.lookup(k.key) as KeyInfo | undefined)?.id).toBe(k.id)
    cached!.secretHash = hash
    // Rotated with a grace: a new record; the old string works as the previous secret until the grace ends.
    const secret = generateSecret()
    s.set(k.id, { secretHash: hashSecret(secret), previousSecretHash: hash, previousExpiresAt: now + 1000 })
    f.emit({ kind: 'key', id: k.id })
    const fresh = formatKey(k.id, secret)
    expect((await cache.lookup(k.key))?.id).toBe(k.id)
    expect((await cache.lookup(fresh))?.id).toBe(k.id)
    now += 1000
    expect(cache.lookup(k.key)).toBeUndefined()
    expect((cache.lookup(fresh) as KeyInfo | undefined)?.id).toBe(k.id)
    // Revoked while cached: the remembered string is refused at once.
    s.set(k.id, { revokedAt: now })
    f.emit({ kind: 'key', id: k.id })
    expect(await cache.lookup(fresh)).toBeUndefined()
  })

  it('costs the database at most the miss budget under a spray of random ids, and stays bounded', async () => {
    const s = source()
    let now = 1_000_000
    const cache = new KeyCache(s.src, undefined, {
      clock: () => now,
      missLookupsPerSecond: 20,
      maxNegative: 100,
    })
    const real = s.add()
    await cache.warm()
    for (let second = 0; second < 5; second++) {
      for (let i = 0; i < 10_000; i++) await cache.lookup(formatKey(generatePublicId(), generateSecret()))
      now += 1000
    }
    // 20 a second (burst 20) over 5 s of spraying: at most 20 + 4 × 20 reads.
    expect(s.reads()).toBeLessThanOrEqual(100)
    expect(cache.stats().throttled).toBeGreaterThanOrEqual(50_000 - 100)
    expect(cache.stats().negative).toBeLessThanOrEqual(100)
    // A known key is read whatever the budget says.
    expect((await cache.lookup(real.key))?.id).toBe(real.id)
  })

  it('reads a key it never heard of while the budget allows (a key made a moment ago elsewhere)', async () => {
    const s = source()
    const cache = new KeyCache(s.src, undefined, { missLookupsPerSecond: 5 })
    await cache.warm()
    const fresh = s.add() // after the known set was loaded, and no notice yet
    expect((await cache.lookup(fresh.key))?.id).toBe(fresh.id)
  })

  it('keeps serving a cached key while the database is down, and says so when it cannot know', async () => {
    const s = source()
    let now = 1_000_000
    const errors: unknown[] = []
    const cache = new KeyCache(s.src, undefined, {
      clock: () => now,
      ttlMs: 1000,
      staleIfErrorMs: 60_000,
      onError: (e) => errors.push(e),
    })
    const k = s.add()
    const other = s.add()
    await cache.warm()
    expect(await cache.lookup(k.key)).toBeDefined()
    s.fail(true)
    now += 2000
    expect((await cache.lookup(k.key))?.id).toBe(k.id) // stale, within staleIfErrorMs
    expect(errors).toHaveLength(1)
    await expect(cache.lookup(other.key)).rejects.toBeInstanceOf(KeyLookupUnavailableError) // known, never cached
    expect(await cache.lookup(formatKey(generatePublicId(), generateSecret()))).toBeUndefined() // unknown: 401, not 503
    now += 60_000
    await expect(cache.lookup(k.key)).rejects.toBeInstanceOf(KeyLookupUnavailableError) // too stale
  })

  it('shares one read among concurrent lookups of a key, and drops a read overtaken by a notice', async () => {
    const s = source()
    const f = feed()
    const cache = new KeyCache(s.src, f)
    const k = s.add()
    await cache.warm()
    const all = await Promise.all(Array.from({ length: 50 }, () => cache.lookup(k.key)))
    expect(all.every((r) => r?.id === k.id)).toBe(true)
    expect(s.reads()).toBe(1)

    f.emit({ kind: 'key', id: k.id })
    const pending = cache.lookup(k.key)
    f.emit({ kind: 'key', id: k.id }) // a change committed while the read was on its way
    await pending
    expect(cache.stats().entries).toBe(0) // the possibly stale read was not cached
  })

  it('bounds its entries, evicting the oldest', async () => {
    const s = source()
    const cache = new KeyCache(s.src, undefined, { maxEntries: 10 })
    const keys = Array.from({ length: 25 }, () => s.add())
    await cache.warm()
    for (const k of keys) await cache.lookup(k.key)
    expect(cache.stats().entries).toBe(10)
  })
})
