/**
 * Countries of a shared key in both detector stores (memory and a real redis-server): one alert
 * at the country threshold (exactly one under concurrency), a block at blockCountriesAt, no count
 * for addresses without a country, bounded state, clear; the options' checks; and the lookup on
 * the GeoLite2 Country database.
 */
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BLOCK, checkStep, resolveDetectors } from '../../src/core/detectors/index.js'
import { SluiceInputError } from '../../src/core/errors.js'
import { openGeoIp } from '../../src/http/geoip.js'
import { MemoryDetectorStore } from '../../src/store/detectors/memory.js'
import { RedisDetectorStore } from '../../src/store/detectors/redis.js'
import type { DetectorStore } from '../../src/store/detectors/types.js'
import { GEOLITE2_COUNTRY, probeCountries } from '../helpers/geoip.js'
import { type RedisServer, startRedis } from '../helpers/redis-server.js'

let redis: RedisServer
let client: Redis
let n = 0
beforeAll(async () => {
  redis = await startRedis()
  client = new Redis(redis.url)
})
afterAll(async () => {
  client.disconnect()
  await redis.stop()
})

const kinds: [string, () => DetectorStore][] = [
  ['memory', () => new MemoryDetectorStore()],
  ['redis', () => new RedisDetectorStore({ client, prefix: `c${process.pid}-${++n}:` })],
]

const set = (sharedKey: object) =>
  resolveDetectors({ sharedKey: { alertAt: 100, factor: 0, ...sharedKey }, loop: false, spend: false }).base
const COUNTRIES = ['DE', 'FR', 'JP', 'BR', 'US', 'AU']

describe.each(kinds)('%s detector store: countries of a shared key', (_kind, make) => {
  it('many addresses from 6 countries concurrently: exactly one alert, by countries, naming 3', async () => {
    const store = make()
    const s = set({ countriesAt: 3 })
    const outs = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        store.check(
          'key:travel',
          checkStep(s, { address: `203.0.113.${i}`, isKey: true, country: COUNTRIES[i % 6] })!,
        ),
      ),
    )
    const raised = outs.flatMap((o) => o.raised)
    expect(raised).toHaveLength(1)
    expect(raised[0]).toMatchObject({
      detector: 'sharedKey',
      level: 1,
      value: 3,
      threshold: 3,
      by: 'countries',
    })
    expect(raised[0]!.countries).toHaveLength(3)
    expect(COUNTRIES).toEqual(expect.arrayContaining(raised[0]!.countries!))
    expect(raised[0]!.addresses!.length).toBeGreaterThanOrEqual(3)
    expect(outs.every((o) => o.refused === undefined)).toBe(true)
    // Bounded: at most countriesAt + 1 countries kept.
    expect((await store.inspect('key:travel')).countries).toHaveLength(4)
    await store.clear('key:travel', 'sharedKey')
    expect((await store.inspect('key:travel')).countries).toEqual([])
  })

  it('one country, or none known, counts no more than one', async () => {
    const store = make()
    const s = set({ countriesAt: 2 })
    const raised = []
    for (let i = 0; i < 20; i++) {
      const country = i % 2 === 0 ? 'NL' : '' // '' : a private address, or one not in the database
      const out = await store.check(
        'key:home',
        checkStep(s, { address: `10.0.0.${i}`, isKey: true, country })!,
      )
      raised.push(...out.raised)
    }
    expect(raised).toEqual([])
    expect((await store.inspect('key:home')).countries).toEqual(['NL'])
  })

  it('blockCountriesAt blocks the key; an address alert names the countries too', async () => {
    const store = make()
    const s = set({ countriesAt: 0, blockCountriesAt: 2 })
    const first = await store.check(
      'key:b',
      checkStep(s, { address: '198.51.100.1', isKey: true, country: 'SE' })!,
    )
    expect(first.raised).toEqual([])
    const second = await store.check(
      'key:b',
      checkStep(s, { address: '198.51.100.2', isKey: true, country: 'CH' })!,
    )
    expect(second.raised).toMatchObject([{ level: BLOCK, value: 2, threshold: 2, by: 'countries' }])
    expect(second.refused).toMatchObject({ detector: 'sharedKey', level: BLOCK })

    const byAddresses = set({ alertAt: 2, countriesAt: 5 })
    await store.check(
      'key:a',
      checkStep(byAddresses, { address: '198.51.100.1', isKey: true, country: 'SE' })!,
    )
    const out = await store.check(
      'key:a',
      checkStep(byAddresses, { address: '198.51.100.2', isKey: true, country: 'CH' })!,
    )
    expect(out.raised).toHaveLength(1)
    expect(out.raised[0]).toMatchObject({ value: 2, threshold: 2, by: 'addresses' })
    expect(new Set(out.raised[0]!.countries)).toEqual(new Set(['SE', 'CH']))
  })
})

describe('country options and the GeoIP database', () => {
  it('countriesAt and blockCountriesAt are checked, default off', () => {
    const s = resolveDetectors({}).base.sharedKey
    expect(s).toMatchObject({ countriesAt: 0, blockCountriesAt: 0 })
    expect(() => resolveDetectors({ sharedKey: { countriesAt: -1 } })).toThrow(/sharedKey\.countriesAt/)
    expect(() => resolveDetectors({ sharedKey: { blockCountriesAt: 1.5 } })).toThrow(
      /sharedKey\.blockCountriesAt/,
    )
    // Off: the step carries no country.
    expect(
      checkStep(resolveDetectors({}).base, { address: '1.2.3.4', isKey: true, country: 'DE' })!.address!
        .country,
    ).toBeUndefined()
  })

  it('looks countries up in GeoLite2 Country; private addresses have none', () => {
    const { lookup, byCountry } = probeCountries()
    expect(byCountry.length).toBeGreaterThanOrEqual(4)
    for (const p of byCountry) expect(p.country).toMatch(/^[A-Z]{2}$/)
    for (const ip of ['10.1.2.3', '192.168.0.1', '127.0.0.1', 'fd00::1', 'not an address']) {
      expect(lookup.country(ip)).toBeUndefined()
    }
  })

  it('a missing file or one that is not a MaxMind database is an error naming the path', () => {
    expect(() => openGeoIp('/nonexistent/x.mmdb')).toThrow(SluiceInputError)
    expect(() => openGeoIp('/nonexistent/x.mmdb')).toThrow(
      /geoip\.database: cannot read \/nonexistent\/x\.mmdb/,
    )
    const self = new URL(import.meta.url).pathname
    expect(() => openGeoIp(self)).toThrow(/is not a MaxMind DB file/)
    expect(openGeoIp(GEOLITE2_COUNTRY).country('8.8.8.8')).toMatch(/^[A-Z]{2}$/)
  })
})
