import { describe, expect, it } from 'vitest'
import { Sluice } from '../../src/http/index.js'
import { KeyHashes } from '../../src/http/key-hashes.js'
import { generateApiKey, hashApiKey, type KeyRecord } from '../../src/http/keys.js'
import { slidingWindow } from '../../src/index.js'

describe('KeyHashes', () => {
  it('answers hashApiKey(key), kept or not, and keeps at most its size', () => {
    const hashes = new KeyHashes(3)
    const keys = Array.from({ length: 7 }, () => generateApiKey())
    for (const key of keys) {
      expect(hashes.of(key)).toBe(hashApiKey(key))
      hashes.remember(key, hashApiKey(key))
      expect(hashes.count).toBeLessThanOrEqual(3)
      expect(hashes.of(key)).toBe(hashApiKey(key))
    }
    for (const key of keys) expect(hashes.of(key)).toBe(hashApiKey(key))
  })
})

describe('the identity step with remembered key hashes', () => {
  const tiers = {
    anonymous: { scope: 'ip' as const, limits: { minute: slidingWindow({ limit: 10, windowMs: 60_000 }) } },
    service: { scope: 'key' as const, limits: { minute: slidingWindow({ limit: 100, windowMs: 60_000 }) } },
  }
  const req = (key: string) => ({
    method: 'POST',
    url: '/v1/chat/completions',
    headers: { authorization: `Bearer ${key}` },
    remoteAddress: '198.51.100.7',
  })

  it('keeps only keys that opened a record, and still looks the record up on every request', async () => {
    const good = generateApiKey()
    const records = new Map<string, KeyRecord>([[hashApiKey(good), { id: 'k', tier: 'service' }]])
    const looked: string[] = []
    const s = new Sluice({
      logger: false,
      tiers,
      keys: {
        lookup: (hash) => {
          looked.push(hash)
          return records.get(hash)
        },
      },
    })
    const kept = () => (s as unknown as { identifier: { keyHashes: KeyHashes } }).identifier.keyHashes.count
    for (let i = 0; i < 3; i++) {
      expect((await s.identify(req(generateApiKey()))).refusal?.status).toBe(401)
    }
    expect(kept()).toBe(0)
    expect((await s.identify(req(good))).identity?.keyHash).toBe(hashApiKey(good))
    expect((await s.identify(req(good))).identity?.subject).toBe('key:k')
    expect(kept()).toBe(1)
    // Revoked after its hash was kept: refused on the next request, as before.
    records.set(hashApiKey(good), { id: 'k', tier: 'service', revoked: true })
    expect((await s.identify(req(good))).refusal?.status).toBe(401)
    expect(looked.slice(-3)).toEqual([hashApiKey(good), hashApiKey(good), hashApiKey(good)])
  })
})
