import { describe, SluiceInputError } from '../../core/errors.js'
import { IpSet } from '../../http/ip.js'

const WHY =
  'any client could send X-Forwarded-For and choose its own address (escaping per-IP limits), and with trustedUserHeader its own user id'

/**
 * Why an `auth.trustProxy` value is refused, or undefined when it is fine: false, a hop count, or
 * the addresses/CIDRs of your proxies — never `true` or ranges that hold every address.
 */
export function trustProxyProblem(value: unknown): string | undefined {
  if (value === false) return undefined
  if (value === true) {
    return `true would trust every peer: ${WHY}. List your proxies' addresses or CIDRs (e.g. [10.0.0.0/8] or [loopback]), or give the number of proxies in front of the gateway`
  }
  if (typeof value === 'number') {
    return Number.isInteger(value) && value >= 1 && value <= 100
      ? undefined
      : `expected a hop count from 1 to 100 (false trusts no proxy), got ${describe(value)}`
  }
  if (!Array.isArray(value)) {
    return `expected false, a hop count, or a list of your proxies' addresses or CIDRs (e.g. [10.0.0.0/8]), got ${describe(value)}`
  }
  let set: IpSet
  try {
    set = new IpSet(value as string[], 'trustProxy')
  } catch (error) {
    if (error instanceof SluiceInputError) return error.message
    throw error
  }
  const family = set.holdsEveryAddress()
  if (family === undefined) return undefined
  return `${describe(value)} holds every ${family} address: ${WHY}. List only your proxies' addresses or CIDRs`
}
