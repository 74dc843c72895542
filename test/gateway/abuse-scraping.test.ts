/**
 * Slow scraping through the gateway, with the official openai client and real HTTP: a key kept
 * at its rate limit bucket after bucket raises exactly one scraping alert; a key at half of it
 * raises none. Short buckets (1 s for 3 s) stand in for the defaults' minutes and hours.
 */
import OpenAI, { RateLimitError } from 'openai'
import { afterAll, describe, expect, it } from 'vitest'
import type { DetectionEvent } from '../../src/http/index.js'
import { newKey, STORE_KINDS, startTestGateway, stopRedis } from './helpers.js'

afterAll(stopRedis)

const tier = {
  scope: 'key' as const,
  limits: { requests: { kind: 'fixedWindow' as const, unit: 'requests', limit: 10, window: '1s' } },
  block: false as const,
}

const nextSecond = () => new Promise((r) => setTimeout(r, 1000 - (Date.now() % 1000) + 30))

describe.each(STORE_KINDS)('slow scraping through the gateway (%s store)', (kind) => {
  it('a key at 100 % of its limit every second raises one alert; a key at 50 % none', async () => {
    const hot = newKey('service', `scrape-hot-${kind}`)
    const half = newKey('service', `scrape-half-${kind}`)
    const gw = await startTestGateway(kind, {
      tiers: { service: tier },
      auth: { keys: [hot.entry, half.entry] },
      detectors: {
        loop: false,
        spend: false,
        sharedKey: false,
        scraping: { share: 0.9, bucket: '1s', for: '3s' },
      },
    })
    try {
      const seen: DetectionEvent[] = []
      gw.sluice.events.on('detection', (e) => seen.push(e))
      const client = (key: string) => new OpenAI({ apiKey: key, baseURL: `${gw.url}/v1`, maxRetries: 0 })
      const [hotClient, halfClient] = [client(hot.key), client(half.key)]
      const burst = (c: OpenAI, n: number) =>
        Promise.allSettled(
          Array.from({ length: n }, (_, i) =>
            c.chat.completions.create({
              model: 'gpt-4o-mini',
              messages: [{ role: 'user', content: `page ${Date.now()}-${i}` }],
              max_tokens: 4,
            }),
          ),
        )
      // Each second: the hot key uses its whole limit, the other half of it. Until one second
      // after the alert (its flag lasts `for`: a second alert would need 3 more seconds).
      let after = -1
      for (let s = 0; s < 10 && after < 1; s++) {
        await nextSecond()
        await Promise.all([burst(hotClient, 10), burst(halfClient, 5)])
        await gw.settled()
        await gw.sluice.flush()
        if (after >= 0 || seen.length > 0) after++
      }
      expect(seen.map((d) => [d.detector, d.level, d.subject])).toEqual([
        ['scraping', 'alert', `key:scrape-hot-${kind}`],
      ])
      expect(seen[0]!.value).toBe(3)
      expect(seen[0]!.message).toMatch(/stayed at its limit for 3 intervals/)
    } finally {
      await gw.close()
    }
  })

  it('with action: throttle, a key at its limit is held below it for the rest of each bucket', async () => {
    const hot = newKey('service', `scrape-throttle-${kind}`)
    const gw = await startTestGateway(kind, {
      tiers: { service: tier },
      auth: { keys: [hot.entry] },
      detectors: {
        loop: false,
        spend: false,
        sharedKey: false,
        scraping: { share: 0.9, bucket: '1s', for: '3s', action: 'throttle' },
      },
    })
    try {
      const seen: DetectionEvent[] = []
      gw.sluice.events.on('detection', (e) => seen.push(e))
      const c = new OpenAI({ apiKey: hot.key, baseURL: `${gw.url}/v1`, maxRetries: 0 })
      const call = () =>
        c.chat.completions.create({
          model: 'gpt-4o-mini',
          messages: [{ role: 'user', content: 'next page' }],
        })
      for (let s = 0; s < 10 && seen.length === 0; s++) {
        await nextSecond()
        await Promise.allSettled(Array.from({ length: 10 }, call))
        await gw.settled()
        await gw.sluice.flush()
      }
      expect(seen.map((d) => [d.detector, d.level])).toEqual([['scraping', 'throttle']])
      // The next second, one call at a time: the 9th finds the key at 90 %, the 10th is refused.
      await nextSecond()
      const outcomes: (number | string)[] = []
      for (let i = 0; i < 10; i++) {
        outcomes.push(
          await call().then(
            () => 200,
            (e: unknown) => (e instanceof RateLimitError ? String(e.code) : String(e)),
          ),
        )
        await gw.settled()
        await gw.sluice.flush()
      }
      expect(outcomes.filter((o) => o === 200).length).toBeGreaterThanOrEqual(1)
      expect(outcomes.filter((o) => o === 200).length).toBeLessThanOrEqual(9)
      expect(outcomes.at(-1)).toBe('scraping')
    } finally {
      await gw.close()
    }
  })
})
