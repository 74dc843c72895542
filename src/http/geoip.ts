/**
 * Countries of client addresses for the shared-key detector, from a MaxMind DB file (GeoLite2 or
 * GeoIP2 Country or City) that the user supplies. The file is read once, when the detectors are
 * built; each lookup is a walk of the in-memory tree: no I/O on the request path. The `maxmind`
 * package is loaded only when a database is configured.
 */
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { SluiceInputError } from '../core/errors.js'

/** Finds an address's country: an ISO 3166 code, or undefined (private, unknown, not an address). */
export interface CountryLookup {
  country(ip: string): string | undefined
}

/** The `geoip` option: a database file to open, or a lookup already opened. */
export type GeoIpOption = { database: string } | CountryLookup

interface MaxMindReader {
  get(ip: string): { country?: { iso_code?: string } } | null
  metadata: { databaseType: string }
}
type MaxMind = { Reader: new (db: Buffer) => MaxMindReader }

/**
 * Opens a MaxMind DB file whose records carry a country. Throws SluiceInputError naming `what`
 * and the path when the file cannot be read or is not such a database.
 */
export function openGeoIp(path: string, what = 'geoip.database'): CountryLookup {
  if (typeof path !== 'string' || path === '') {
    throw new SluiceInputError(`${what} must be the path of a MaxMind .mmdb file, got ${String(path)}`)
  }
  let bytes: Buffer
  try {
    bytes = readFileSync(path)
  } catch (error) {
    throw new SluiceInputError(`${what}: cannot read ${path} (${(error as Error).message})`)
  }
  let maxmind: MaxMind
  try {
    // A synchronous load keeps the detectors' construction synchronous; maxmind is CommonJS.
    maxmind = createRequire(import.meta.url)('maxmind') as MaxMind
  } catch {
    throw new SluiceInputError(`${what} needs the "maxmind" package: npm install maxmind`)
  }
  let reader: MaxMindReader
  try {
    reader = new maxmind.Reader(bytes)
  } catch (error) {
    throw new SluiceInputError(`${what}: ${path} is not a MaxMind DB file (${(error as Error).message})`)
  }
  const type = reader.metadata.databaseType
  if (!/Country|City/i.test(type)) {
    throw new SluiceInputError(`${what}: ${path} is a ${type} database; a Country or City database is needed`)
  }
  return {
    country(ip: string): string | undefined {
      try {
        return reader.get(ip)?.country?.iso_code
      } catch {
        return undefined // not an address the database can look up
      }
    },
  }
}

/** The lookup of a `geoip` option (opening its database when given a path). */
export function geoIpOf(option: unknown, what: string): CountryLookup {
  if (typeof option === 'object' && option !== null) {
    const o = option as Record<string, unknown>
    if (typeof o.country === 'function') return option as CountryLookup
    if (o.database !== undefined) return openGeoIp(o.database as string, `${what}.database`)
  }
  throw new SluiceInputError(
    `${what} must be { database: "<path to a .mmdb file>" } or an object with a country(ip) function`,
  )
}
