import ipaddr from 'ipaddr.js'
import { describe, SluiceInputError } from '../core/errors.js'

type Address = ipaddr.IPv4 | ipaddr.IPv6
type Range = [Address, number]

/** Named ranges accepted wherever CIDRs are (as in Express's `trust proxy`). */
const NAMED_RANGES: Record<string, string[]> = {
  loopback: ['127.0.0.0/8', '::1/128'],
  linklocal: ['169.254.0.0/16', 'fe80::/10'],
  uniquelocal: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7'],
}

/**
 * Parses an address, normalising IPv4-mapped IPv6 (`::ffff:1.2.3.4`) to IPv4 and dropping any
 * IPv6 zone id. Undefined for anything that is not an IP address.
 */
export function parseIp(text: string | undefined): Address | undefined {
  if (text === undefined || text === '') return undefined
  try {
    const addr = ipaddr.process(text)
    if (addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).zoneId !== undefined) {
      return new ipaddr.IPv6((addr as ipaddr.IPv6).parts)
    }
    return addr
  } catch {
    return undefined
  }
}

/**
 * A set of addresses and CIDR ranges ("10.0.0.0/8", "2001:db8::/32", "192.0.2.7", or the names
 * "loopback", "linklocal", "uniquelocal"). IPv4-mapped IPv6 entries match their IPv4 form.
 */
export class IpSet {
  readonly size: number
  private readonly v4: Range[] = []
  private readonly v6: Range[] = []

  /** @param what names the option in errors, e.g. "trustProxy". */
  constructor(entries: readonly string[], what: string) {
    if (!Array.isArray(entries)) {
      throw new SluiceInputError(`${what} must be a list of IP addresses or CIDRs, got ${describe(entries)}`)
    }
    for (const [i, entry] of entries.entries()) {
      if (typeof entry !== 'string') {
        throw new SluiceInputError(`${what}[${i}] must be an IP address or CIDR, got ${describe(entry)}`)
      }
      const named = NAMED_RANGES[entry.toLowerCase()]
      for (const text of named ?? [entry]) this.add(parseRange(text, `${what}[${i}]`))
    }
    this.size = this.v4.length + this.v6.length
  }

  /** The family whose every address this set holds ("0.0.0.0/0", "::/0", two halves…), if any. */
  holdsEveryAddress(): 'IPv4' | 'IPv6' | undefined {
    if (coversAll(this.v4, 32)) return 'IPv4'
    if (coversAll(this.v6, 128)) return 'IPv6'
    return undefined
  }

  has(addr: Address): boolean {
    const ranges = addr.kind() === 'ipv4' ? this.v4 : this.v6
    for (const range of ranges) if (addr.match(range)) return true
    return false
  }

  private add(range: Range): void {
    if (range[0].kind() === 'ipv4') this.v4.push(range)
    else this.v6.push(range)
  }
}

/** Whether ranges of addresses `width` bits long, merged, span the whole address space. */
function coversAll(ranges: readonly Range[], width: number): boolean {
  const spans = ranges
    .map(([addr, bits]): [bigint, bigint] => {
      let start = 0n
      for (const byte of maskBytes(addr.toByteArray(), bits)) start = (start << 8n) | BigInt(byte)
      return [start, start + (1n << BigInt(width - bits)) - 1n]
    })
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
  let next = 0n
  for (const [start, end] of spans) {
    if (start > next) return false
    if (end + 1n > next) next = end + 1n
  }
  return next === 1n << BigInt(width)
}

function parseRange(text: string, what: string): Range {
  const slash = text.indexOf('/')
  if (slash === -1) {
    const addr = parseIp(text)
    if (addr === undefined)
      throw new SluiceInputError(`${what} is not an IP address or CIDR: ${describe(text)}`)
    return [addr, addr.kind() === 'ipv4' ? 32 : 128]
  }
  let range: Range
  try {
    range = ipaddr.parseCIDR(text)
  } catch {
    throw new SluiceInputError(`${what} is not an IP address or CIDR: ${describe(text)}`)
  }
  const [addr, bits] = range
  if (addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress() && bits >= 96) {
    return [(addr as ipaddr.IPv6).toIPv4Address(), bits - 96]
  }
  return range
}

/** Strips what proxies put around an address: quotes, [brackets], a :port. */
function bareAddress(raw: string): string {
  let s = raw.trim()
  if (s.startsWith('"') && s.endsWith('"') && s.length >= 2) s = s.slice(1, -1)
  if (s.startsWith('[')) {
    const end = s.indexOf(']')
    return end === -1 ? s : s.slice(1, end)
  }
  const colon = s.indexOf(':')
  // IPv4 with a port ("192.0.2.1:4711"); IPv6 has more than one colon and no port without brackets.
  if (colon !== -1 && s.indexOf(':', colon + 1) === -1) return s.slice(0, colon)
  return s
}

/** The addresses an `X-Forwarded-For` header lists, client first. */
export function parseXForwardedFor(value: string): string[] {
  return value.split(',').map(bareAddress)
}

/** The `for=` addresses of an RFC 7239 `Forwarded` header, client first ("unknown" and obfuscated kept as-is). */
export function parseForwarded(value: string): string[] {
  const out: string[] = []
  for (const element of value.split(',')) {
    let found = ''
    for (const pair of element.split(';')) {
      const eq = pair.indexOf('=')
      if (eq === -1) continue
      if (pair.slice(0, eq).trim().toLowerCase() === 'for') found = bareAddress(pair.slice(eq + 1))
    }
    out.push(found)
  }
  return out
}

/**
 * Which peers may say who the client is:
 * - `false` (default): nobody; the socket address is the client.
 * - a number n ≥ 1: every request passes through exactly n proxies; the client is the address n
 *   hops to the left of the socket in the forwarding header.
 * - a list of addresses/CIDRs (or "loopback", "linklocal", "uniquelocal"): walk the forwarding
 *   header from the right while the hop is trusted; the first untrusted address is the client.
 */
export type TrustProxy = false | number | readonly string[]

export interface IpOptions {
  trustProxy?: TrustProxy
  /** Which header a trusted proxy writes (default "x-forwarded-for"). Only this one is read. */
  forwardedHeader?: 'x-forwarded-for' | 'forwarded'
  /** Addresses are grouped into prefixes of this length (default 32: each IPv4 address alone). */
  ipv4Subnet?: number
  /** IPv6 addresses are grouped into prefixes of this length (default 64: one /64 is one client). */
  ipv6Subnet?: number
}

export interface ClientIp {
  /** The client's address as resolved (normalised: IPv4-mapped IPv6 shown as IPv4). */
  ip: string
  /** The bucket the address counts in: the address, or its prefix such as "2001:db8:1:2::/64". */
  group: string
  /** What per-IP limits count: `ip:<group>` (made once per address, not per request). */
  subject: string
  /** The socket peer is a trusted proxy (so proxy-set headers such as a trusted user header count). */
  fromTrustedProxy: boolean
  parsed: Address
}

function subnetOption(value: unknown, fallback: number, max: number, what: string): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
    throw new SluiceInputError(`${what} must be a whole number from 1 to ${max}, got ${describe(value)}`)
  }
  return value
}

function maskBytes(bytes: number[], bits: number): number[] {
  return bytes.map((b, i) => {
    const keep = Math.max(0, Math.min(8, bits - i * 8))
    return keep === 8 ? b : b & ((0xff << (8 - keep)) & 0xff)
  })
}

const CACHE_LIMIT = 10_000

/** Resolves the client address of a request and the bucket it counts in. */
export class IpResolver {
  readonly hops: number
  readonly trusted: IpSet | undefined
  readonly header: 'x-forwarded-for' | 'forwarded'
  readonly ipv4Subnet: number
  readonly ipv6Subnet: number
  private readonly groups = new Map<string, ClientIp>()

  constructor(options: IpOptions = {}) {
    const trust = options.trustProxy ?? false
    if (trust === false) {
      this.hops = 0
    } else if (typeof trust === 'number') {
      if (!Number.isInteger(trust) || trust < 1 || trust > 100) {
        throw new SluiceInputError(
          `trustProxy must be false, a hop count from 1 to 100, or a list of CIDRs, got ${describe(trust)}`,
        )
      }
      this.hops = trust
    } else if (Array.isArray(trust)) {
      this.hops = 0
      this.trusted = new IpSet(trust, 'trustProxy')
      const everyone = this.trusted.holdsEveryAddress()
      if (everyone !== undefined) {
        throw new SluiceInputError(
          `trustProxy holds every ${everyone} address, so any client could send X-Forwarded-For and choose its own address (and user, with trustedUserHeader): list only your proxies' addresses or CIDRs, got ${describe(trust)}`,
        )
      }
    } else {
      throw new SluiceInputError(
        `trustProxy must be false, a hop count, or a list of CIDRs (true is refused: say which proxies), got ${describe(trust)}`,
      )
    }
    const header = options.forwardedHeader ?? 'x-forwarded-for'
    if (header !== 'x-forwarded-for' && header !== 'forwarded') {
      throw new SluiceInputError(
        `forwardedHeader must be "x-forwarded-for" or "forwarded", got ${describe(header)}`,
      )
    }
    this.header = header
    this.ipv4Subnet = subnetOption(options.ipv4Subnet, 32, 32, 'ipv4Subnet')
    this.ipv6Subnet = subnetOption(options.ipv6Subnet, 64, 128, 'ipv6Subnet')
  }

  /** True when some proxy is trusted, so forwarding headers are read at all. */
  get trustsProxies(): boolean {
    return this.hops > 0 || this.trusted !== undefined
  }

  /**
   * The client address: the socket peer, or — only when the peer is a trusted proxy — what the
   * forwarding header says. Undefined when the socket address is missing or not an IP.
   */
  resolve(socketAddress: string | undefined, forwardedValue: string | undefined): ClientIp | undefined {
    if (socketAddress === undefined) return undefined
    if (!this.trustsProxies || forwardedValue === undefined || forwardedValue === '') {
      const base = this.group(socketAddress)
      if (base === undefined || !this.trustsProxies) return base
      const fromTrustedProxy = this.hops > 0 || this.trusted!.has(base.parsed)
      return fromTrustedProxy ? { ...base, fromTrustedProxy } : base
    }
    const peer = parseIp(socketAddress)
    if (peer === undefined) return undefined
    const chain =
      this.header === 'forwarded' ? parseForwarded(forwardedValue) : parseXForwardedFor(forwardedValue)
    if (this.hops > 0) {
      // The socket is hop 0; the proxy nearest to us appended the address n-1 entries from the right.
      for (let i = chain.length - 1, hop = 1; i >= 0; i--, hop++) {
        const addr = parseIp(chain[i])
        if (addr === undefined) return this.fromAddress(peer, true)
        if (hop === this.hops || i === 0) return this.fromAddress(addr, true)
      }
      return this.fromAddress(peer, true)
    }
    if (!this.trusted!.has(peer)) return this.fromAddress(peer, false)
    let client = peer
    for (let i = chain.length - 1; i >= 0; i--) {
      const addr = parseIp(chain[i])
      // Garbage left of a trusted hop was written by someone we do not trust: stop at the last good hop.
      if (addr === undefined) break
      client = addr
      if (!this.trusted!.has(addr)) break
    }
    return this.fromAddress(client, true)
  }

  /** The bucket of one address (cached: the same few addresses repeat). */
  group(address: string): ClientIp | undefined {
    const cached = this.groups.get(address)
    if (cached !== undefined) return cached
    const parsed = parseIp(address)
    if (parsed === undefined) return undefined
    const result = this.fromAddress(parsed, false)
    if (this.groups.size >= CACHE_LIMIT) this.groups.clear()
    this.groups.set(address, result)
    return result
  }

  private fromAddress(addr: Address, fromTrustedProxy: boolean): ClientIp {
    const ip = addr.toString()
    const bits = addr.kind() === 'ipv4' ? this.ipv4Subnet : this.ipv6Subnet
    const full = addr.kind() === 'ipv4' ? 32 : 128
    const group =
      bits === full ? ip : `${ipaddr.fromByteArray(maskBytes(addr.toByteArray(), bits)).toString()}/${bits}`
    return { ip, group, subject: `ip:${group}`, fromTrustedProxy, parsed: addr }
  }
}
