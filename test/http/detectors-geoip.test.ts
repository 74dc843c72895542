/**
 * Countries in the library, without the gateway: sluice/express with `detectors.geoip` (a
 * MaxMind DB path, opened when the middleware is built) alerts once when a key is used from
 * `countriesAt` countries, naming them; a bad path, or country thresholds without a database, are
 * refused when the middleware is built, naming the option.
 */
import type { AddressInfo } from 'node:net'
import express from 'express'
import { describe, expect, it } from 'vitest'
import { sluice } from '../../src/http/express.js'
import { type DetectionEvent, generateApiKey, hashApiKey } from '../../src/http/index.js'
import { fixedWindow, MemoryStore } from '../../src/index.js'
import { GEOLITE2_COUNTRY, probeCountries } from '../helpers/geoip.js'

const tiers = {
  anonymous: { scope: 'ip' as const, limits: { calls: fixedWindow({ limit: 1000, windowMs: 3_600_000 }) } },
  service: { scope: 'key' as const, limits: { calls: fixedWindow({ limit: 1000, windowMs: 3_600_000 }) } },
}

describe('sluice/express with detectors.geoip', () => {
  it('a key used from 2 countries raises one alert naming them; private addresses count none', async () => {
    const { byCountry } = probeCountries()
    const key = generateApiKey()
    const store = new MemoryStore()
    const limit = sluice({
      store,
      tiers,
      keys: [{ hash: hashApiKey(key), tier: 'service', id: 'lib-geo' }],
      trustProxy: ['loopback'],
      logger: false,
      detectors: {
        geoip: { database: GEOLITE2_COUNTRY },
        loop: false,
        sharedKey: { alertAt: 100, countriesAt: 2, factor: 0 },
      },
    })
    const seen: DetectionEvent[] = []
    limit.core.events.on('detection', (e) => seen.push(e))
    const app = express()
    app.get('/ask', limit, (_req, res) => {
      res.json({ ok: true })
    })
    const server = app.listen(0)
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/ask`
    const ask = (address: string) =>
      fetch(url, { headers: { authorization: `Bearer ${key}`, 'x-forwarded-for': address } })
    try {
      for (const address of ['10.0.0.1', '192.168.1.1', byCountry[0]!.address, '10.0.0.2']) {
        expect((await ask(address)).status).toBe(200)
      }
      expect(seen).toEqual([])
      expect((await ask(byCountry[1]!.address)).status).toBe(200)
      await limit.core.flush()
      expect(seen.map((e) => [e.subject, e.detector, e.level, e.value])).toEqual([
        ['key:lib-geo', 'sharedKey', 'alert', 2],
      ])
      expect(new Set(seen[0]!.countries)).toEqual(new Set([byCountry[0]!.country, byCountry[1]!.country]))
    } finally {
      server.close()
      await limit.core.close()
      await store.close()
    }
  })

  it('a bad database path, or country thresholds without one, are refused naming the option', () => {
    const build = (detectors: object) => () =>
      sluice({ store: new MemoryStore(), tiers, logger: false, detectors })
    expect(build({ geoip: { database: '/nonexistent/x.mmdb' } })).toThrow(
      /detectors\.geoip\.database: cannot read \/nonexistent\/x\.mmdb/,
    )
    expect(build({ sharedKey: { countriesAt: 3 } })).toThrow(/need a GeoIP database/)
  })
})
