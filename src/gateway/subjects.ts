/**
 * Subjects as an operator types them (`ip:::1`, `key:ci-bot`, `user:alice`), resolved to the
 * buckets the gateway really counts in: the same address grouping (the IpResolver of a Sluice built
 * from the config), a key's tier, scope, user and own limits from the configured keys.
 */
import type { Identity, Sluice } from '../http/index.js'
import { keyIdOf } from '../http/index.js'
import type { Limiter } from '../limiter.js'
import type { GatewayConfig } from './config/schema.js'

/** One bucket of a subject: the tier, the subject its limits count, and the limiter to ask. */
export interface SubjectTarget {
  tier: string
  subject: string
  limiter: Limiter
}

export interface ResolvedSubject {
  /** What was asked for. */
  input: string
  targets: SubjectTarget[]
  /** How the input maps to the buckets, when not one to one ("::1 counts in ip:::/64"). */
  notes: string[]
}

/** A subject the gateway never counts: an unknown key, a malformed address, a user no tier counts. */
export class SubjectError extends Error {
  override name = 'SubjectError'
}

const SUBJECT = /^(ip|user|key):(.+)$/s

/** The key id every gateway without configured keys gives its demo key. */
const DEMO_KEY_ID = 'demo'

function tiersWithScope(sluice: Sluice, scope: string): string[] {
  return Object.entries(sluice.tiers)
    .filter(([, t]) => t.scope === scope)
    .map(([name]) => name)
}

function resolveIp(sluice: Sluice, text: string): ResolvedSubject {
  const input = `ip:${text}`
  const tiers = tiersWithScope(sluice, 'ip')
  const targets = (subject: string) =>
    tiers.map((tier) => ({ tier, subject, limiter: sluice.tierLimiter(tier) }))
  if (text === 'unknown') return { input, targets: targets(input), notes: [] }
  const slash = text.indexOf('/')
  const address = slash === -1 ? text : text.slice(0, slash)
  const client = sluice.ip.group(address)
  if (client === undefined) throw new SubjectError(`not an IP address: ${address}`)
  const family = client.parsed.kind() === 'ipv4' ? 'IPv4' : 'IPv6'
  const bits = family === 'IPv4' ? sluice.ip.ipv4Subnet : sluice.ip.ipv6Subnet
  if (slash !== -1) {
    const given = text.slice(slash + 1)
    if (!/^\d{1,3}$/.test(given) || Number(given) !== bits) {
      throw new SubjectError(
        `the gateway counts ${family} addresses in groups of /${bits} (auth.${family === 'IPv4' ? 'ipv4' : 'ipv6'}Subnet), so ${text} is not one of its buckets: give an address, or its /${bits}`,
      )
    }
  }
  const notes = client.subject === input ? [] : [`${text} counts in ${client.subject}`]
  return { input, targets: targets(client.subject), notes }
}

function resolveUser(sluice: Sluice, config: GatewayConfig, id: string): ResolvedSubject {
  const input = `user:${id}`
  const targets: SubjectTarget[] = []
  const add = (tier: string, limiter: Limiter) => {
    if (!targets.some((t) => t.tier === tier)) targets.push({ tier, subject: input, limiter })
  }
  if (config.auth.trustedUserHeader !== undefined) add(sluice.userTier, sluice.tierLimiter(sluice.userTier))
  for (const key of config.auth.keys) {
    if (key.user === id && sluice.tiers[key.tier]?.scope === 'user')
      add(key.tier, sluice.tierLimiter(key.tier))
  }
  if (targets.length === 0) {
    throw new SubjectError(
      `no tier counts ${input}: no key in the config has user ${JSON.stringify(id)}, and auth.trustedUserHeader is not set`,
    )
  }
  return { input, targets, notes: [] }
}

async function resolveKey(sluice: Sluice, config: GatewayConfig, id: string): Promise<ResolvedSubject> {
  const input = `key:${id}`
  const configured = config.auth.keys.find((k) => (k.id ?? keyIdOf(k.hash)) === id)
  if (configured === undefined) {
    if (id === DEMO_KEY_ID && config.auth.keys.length === 0 && config.auth.demoKey) {
      // The demo key lives in the serving process; its counts are shared like any key's.
      return {
        input,
        targets: [{ tier: 'service', subject: input, limiter: sluice.tierLimiter('service') }],
        notes: ['the demo key of a gateway without configured keys (service tier)'],
      }
    }
    const ids = config.auth.keys.map((k) => k.id ?? keyIdOf(k.hash))
    const known =
      ids.length === 0
        ? 'no key is configured'
        : `configured: ${ids.slice(0, 10).join(', ')}${ids.length > 10 ? ', …' : ''}`
    throw new SubjectError(`unknown key: no key with id ${JSON.stringify(id)} (${known})`)
  }
  const tier = configured.tier
  const scope = sluice.tiers[tier]?.scope
  if (scope === 'ip') {
    throw new SubjectError(
      `key ${id} is in tier ${tier}, which counts per IP address: inspect the address its calls come from (ip:<address>)`,
    )
  }
  const notes: string[] = []
  const record = await sluice.keys?.lookup(configured.hash)
  let subject = input
  if (scope === 'user' && configured.user !== undefined) {
    subject = `user:${configured.user}`
    notes.push(`key ${id} counts as ${subject} (tier ${tier} counts per user)`)
  }
  if (configured.revoked) notes.push(`key ${id} is revoked: its calls get 401`)
  const identity: Identity = {
    kind: 'key',
    subject,
    tier,
    scope: scope ?? 'key',
    ip: undefined,
    ipGroup: undefined,
    keyId: id,
    keyHash: configured.hash,
    ...(record !== undefined && { key: record }),
    ...(configured.user !== undefined && { userId: configured.user }),
  }
  return { input, targets: [{ tier, subject, limiter: sluice.limiterFor(identity) }], notes }
}

/**
 * Resolves a subject exactly as the gateway counts it. Throws SubjectError for a subject it never
 * counts (an unknown key, an address group of the wrong size, a user no tier counts).
 */
export async function resolveSubject(
  sluice: Sluice,
  config: GatewayConfig,
  input: string,
): Promise<ResolvedSubject> {
  const match = SUBJECT.exec(input)
  if (match === null) throw new SubjectError('a subject looks like key:<id>, user:<id> or ip:<address>')
  const [, kind, value] = match as unknown as [string, 'ip' | 'user' | 'key', string]
  switch (kind) {
    case 'ip':
      return resolveIp(sluice, value)
    case 'user':
      return resolveUser(sluice, config, value)
    case 'key':
      return await resolveKey(sluice, config, value)
  }
}
