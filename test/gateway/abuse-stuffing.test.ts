/**
 * Credential stuffing per key prefix through the gateway, with the official openai client and
 * real HTTP: failed keys sharing a prefix (a database key's public id) from many addresses raise
 * one alert naming the prefix and the addresses; failed keys scattered over prefixes raise none.
 */
import { randomBytes } from 'node:crypto'
import OpenAI, { AuthenticationError } from 'openai'
import { afterAll, describe, expect, it } from 'vitest'
import type { DetectionEvent } from '../../src/http/index.js'
import { generateApiKey } from '../../src/http/keys.js'
import { newKey, STORE_KINDS, startTestGateway, stopRedis } from './helpers.js'

afterAll(stopRedis)

const tier = {
  scope: 'key' as const,
  limits: { requests: { kind: 'slidingWindow' as const, unit: 'requests', limit: 10_000, window: '1h' } },
  block: false as const,
}

describe.each(STORE_KINDS)('failed keys per key prefix (%s store)', (kind) => {
  it('30 bad keys sharing a prefix from 30 addresses raise one alert for it; 30 scattered ones none', async () => {
    const good = newKey('service', `good-${kind}`)
    const gw = await startTestGateway(kind, {
      tiers: { service: tier },
      auth: { keys: [good.entry], trustProxy: ['loopback'], failedAuth: { limit: 1000, window: '1m' } },
      // The gateway-wide counts out of reach: only the per-prefix view can fire.
      detectors: { stuffing: { alertAt: 1000, addressesAt: 0, prefixAddressesAt: 10, window: '1h' } },
    })
    try {
      const seen: DetectionEvent[] = []
      gw.sluice.events.on('detection', (e) => seen.push(e))
      const attempt = (apiKey: string, address: string) =>
        expect(
          new OpenAI({ apiKey, baseURL: `${gw.url}/v1`, maxRetries: 0 }).chat.completions.create(
            { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] },
            { headers: { 'x-forwarded-for': address } },
          ),
        ).rejects.toBeInstanceOf(AuthenticationError)
      // Scattered: random keys (each its own prefix) from 30 addresses.
      for (let i = 0; i < 30; i++) await attempt(generateApiKey(), `192.0.2.${i + 1}`)
      await gw.sluice.flush()
      expect(seen).toEqual([])
      // One public id, guessed secrets, from 30 addresses.
      for (let i = 0; i < 30; i++) {
        await attempt(`sk-sluice-abcdefghij-${randomBytes(32).toString('base64url')}`, `198.51.100.${i + 1}`)
      }
      await gw.sluice.flush()
      expect(seen.map((d) => [d.detector, d.level, d.subject, d.prefix, d.value])).toEqual([
        ['stuffing', 'alert', 'key-prefix:abcdefghij', 'abcdefghij', 10],
      ])
      expect(new Set(seen[0]!.addresses)).toEqual(
        new Set(Array.from({ length: 10 }, (_, i) => `198.51.100.${i + 1}`)),
      )
      expect(seen[0]!.message).toMatch(/prefix abcdefghij from 10 addresses/)
      // Kept for operators like any detection.
      const recent = await gw.sluice.detectors!.store.recent(10)
      expect(recent.map((r) => r.subject)).toEqual(['key-prefix:abcdefghij'])
    } finally {
      await gw.close()
    }
  })
})
