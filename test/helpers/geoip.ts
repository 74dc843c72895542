/**
 * A real GeoLite2 Country database for tests, and public addresses in different countries read
 * from it (the database decides, so tests do not hard-code countries).
 *
 * The database is the one in the tarball of the npm package `geolite2` 4.0.1. It is not a
 * devDependency: its postinstall script exits 1 without a MaxMind licence key, which fails `npm
 * install` / `npm ci` for the whole project. The tarball is fetched once with `npm pack` (which runs
 * no scripts) into node_modules/.cache and the one file taken from it.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { type CountryLookup, openGeoIp } from '../../src/http/geoip.js'

const CACHE = fileURLToPath(new URL('../../node_modules/.cache/geolite2-4.0.1/', import.meta.url))
export const GEOLITE2_COUNTRY = join(CACHE, 'GeoLite2-Country.mmdb')

/** Fetches the database once (concurrent test files each unpack to a directory of their own, then rename). */
function ensureDatabase(): void {
  if (existsSync(GEOLITE2_COUNTRY)) return
  mkdirSync(CACHE, { recursive: true })
  const tmp = mkdtempSync(join(CACHE, 'fetch-'))
  try {
    const file = execFileSync('npm', ['pack', 'geolite2@4.0.1', '--silent', '--pack-destination', tmp], {
      encoding: 'utf8',
    }).trim()
    execFileSync('tar', ['xzf', join(tmp, file), '-C', tmp, 'package/dbs/GeoLite2-Country.mmdb'])
    renameSync(join(tmp, 'package/dbs/GeoLite2-Country.mmdb'), GEOLITE2_COUNTRY)
  } finally {
    rmSync(tmp, { recursive: true, force: true })
  }
}
ensureDatabase()

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
