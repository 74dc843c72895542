/**
 * The GeoLite2 Country database the `geolite2` dev dependency ships, and public addresses in
 * different countries read from it (the database decides, so tests do not hard-code countries).
 */
import { fileURLToPath } from 'node:url'
import { type CountryLookup, openGeoIp } from '../../src/http/geoip.js'

export const GEOLITE2_COUNTRY = fileURLToPath(
  new URL('../../node_modules/geolite2/dbs/GeoLite2-Country.mmdb', import.meta.url),
)

/** Addresses of long-lived networks (registries, universities, DNS operators) on several continents. */
const CANDIDATES = [
  '8.8.8.8',
  '193.0.6.139',
  '200.160.2.3',
  '133.11.0.1',
  '129.132.0.1',
  '142.150.0.1',
  '128.250.0.1',
  '163.1.0.1',
  '147.46.0.1',
  '196.216.2.1',
  '212.27.48.10',
  '217.160.0.1',
  '130.236.0.1',
]

export interface Probed {
  lookup: CountryLookup
  /** One address per country, in CANDIDATES order. */
  byCountry: { address: string; country: string }[]
}

export function probeCountries(): Probed {
  const lookup = openGeoIp(GEOLITE2_COUNTRY)
  const byCountry: Probed['byCountry'] = []
  for (const address of CANDIDATES) {
    const country = lookup.country(address)
    if (country !== undefined && !byCountry.some((p) => p.country === country)) {
      byCountry.push({ address, country })
    }
  }
  return { lookup, byCountry }
}

/** Addresses of the /24 of `address` that the database places in the same country as it. */
export function sameCountryNeighbours(lookup: CountryLookup, address: string, max: number): string[] {
  const country = lookup.country(address)
  const net = address.split('.').slice(0, 3).join('.')
  const out: string[] = []
  for (let i = 1; i < 255 && out.length < max; i++) {
    const a = `${net}.${i}`
    if (lookup.country(a) === country) out.push(a)
  }
  return out
}
