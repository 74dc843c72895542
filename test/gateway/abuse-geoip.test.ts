/**
 * Countries for the shared-key detector through the gateway, with the official openai client and
 * the GeoLite2 Country database: a key used from 4 countries raises exactly one alert naming them
 * across two instances on one Redis; a key used from many addresses in one country raises none; a
 * GeoIP database that cannot be used, or country thresholds without one, stop the start with a
 * clear error.
 */
import OpenAI from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { GatewayConfigInput } from '../../src/gateway/config/schema.js'
import type { DetectionEvent } from '../../src/http/index.js'
import { GEOLITE2_COUNTRY, type Probed, probeCountries, sameCountryNeighbours } from '../helpers/geoip.js'
import { newKey, sharedRedis, startTestGateway, stopRedis, type TestGateway } from './helpers.js'

afterAll(stopRedis)

let probed: Probed
beforeAll(() => {
  probed = probeCountries()
  expect(probed.byCountry.length).toBeGreaterThanOrEqual(4)
})

const tier = {
  scope: 'key' as const,
  limits: { requests: { kind: 'slidingWindow' as const, unit: 'requests', limit: 10_000, window: '1h' } },
  block: false as const,
}

function config(keys: { hash: string; tier: string; id: string }[], prefix: string): GatewayConfigInput {
  return {
    prefix,
    tiers: { service: tier },
    auth: { keys, trustProxy: ['loopback'] },
    geoip: { database: GEOLITE2_COUNTRY },
    detectors: {
      loop: false,
      spend: false,
      scraping: false,
      sharedKey: { alertAt: 100, countriesAt: 3, window: '1m', factor: 0 },
    },
  }
}

function watch(gw: TestGateway): DetectionEvent[] {
  const seen: DetectionEvent[] = []
  gw.sluice.events.on('detection', (e) => seen.push(e))
  return seen
}

const chat = (client: OpenAI, content: string, address: string) =>
  client.chat.completions.create(
    { model: 'gpt-4o-mini', messages: [{ role: 'user', content }], max_tokens: 8 },
    { headers: { 'x-forwarded-for': address } },
  )

describe('countries of a shared key, two gateway instances on one Redis', () => {
  it('a key used from 4 countries raises exactly one alert naming them; one used from one country none', async () => {
    const travelling = newKey('service', 'geo-travelling')
    const local = newKey('service', 'geo-local')
    const cfg = config([travelling.entry, local.entry], `geo-${process.pid}:`)
    await sharedRedis()
    const gws = [await startTestGateway('redis', cfg), await startTestGateway('redis', cfg)]
    try {
      const seen = gws.map(watch)
      const clientsOf = (key: string) =>
        gws.map((gw) => new OpenAI({ apiKey: key, baseURL: `${gw.url}/v1`, maxRetries: 0 }))
      // Four countries, two addresses each (the second one in the same /24 where the database agrees).
      const four = probed.byCountry.slice(0, 4)
      const travel = four.flatMap((p) => [
        p.address,
        ...sameCountryNeighbours(probed.lookup, p.address, 2)
          .filter((a) => a !== p.address)
          .slice(0, 1),
      ])
      const t = clientsOf(travelling.key)
      for (const [i, address] of travel.entries()) await chat(t[i % 2]!, `question ${i}`, address)
      // Many addresses, one country.
      const home = sameCountryNeighbours(probed.lookup, four[0]!.address, 30)
      expect(home.length).toBeGreaterThanOrEqual(10)
      const l = clientsOf(local.key)
      for (const [i, address] of home.entries()) await chat(l[i % 2]!, `question ${i}`, address)
      for (const gw of gws) await gw.sluice.flush()

      const all = seen.flat()
      expect(all.map((d) => [d.subject, d.detector, d.level, d.value, d.threshold])).toEqual([
        ['key:geo-travelling', 'sharedKey', 'alert', 3, 3],
      ])
      const alert = all[0]!
      // It names the three countries seen when the third one arrived, and the addresses.
      expect(new Set(alert.countries)).toEqual(new Set(four.slice(0, 3).map((p) => p.country)))
      expect(alert.message).toMatch(/from 3 countries \(threshold 3\)/)
      for (const p of four.slice(0, 3)) expect(alert.message).toContain(p.country)
      expect(alert.addresses).toEqual(expect.arrayContaining(four.slice(0, 3).map((p) => p.address)))
      // Both instances see the countries the store keeps: all four, none for the local key.
      const store = gws[1]!.sluice.detectors!.store
      expect(new Set((await store.inspect('key:geo-travelling')).countries)).toEqual(
        new Set(four.map((p) => p.country)),
      )
      expect((await store.inspect('key:geo-local')).countries).toEqual([four[0]!.country])
      expect((await store.recent(10)).filter((r) => r.subject === 'key:geo-travelling')).toHaveLength(1)
    } finally {
      for (const gw of gws) await gw.close()
    }
  })
})

describe('GeoIP configuration', () => {
  const k = newKey('service', 'geo-config')
  const base = config([k.entry], 'geo-config:')

  it('a database file that does not exist stops the start, naming the path', async () => {
    const missing = '/nonexistent/GeoLite2-Country.mmdb'
    await expect(startTestGateway('memory', { ...base, geoip: { database: missing } })).rejects.toThrow(
      /geoip\.database: cannot read \/nonexistent\/GeoLite2-Country\.mmdb/,
    )
  })

  it('a file that is not a MaxMind database stops the start, naming the path', async () => {
    const notADatabase = new URL(import.meta.url).pathname
    await expect(startTestGateway('memory', { ...base, geoip: { database: notADatabase } })).rejects.toThrow(
      new RegExp(`geoip\\.database: ${notADatabase.replace(/[.]/g, '\\.')} is not a MaxMind DB file`),
    )
  })

  it('country thresholds without a database are refused', async () => {
    const { geoip: _, ...noDatabase } = base
    await expect(startTestGateway('memory', noDatabase)).rejects.toThrow(/need a GeoIP database/)
  })
})
