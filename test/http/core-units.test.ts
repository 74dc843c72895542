import { parseList } from 'structured-headers'
import { describe, expect, it } from 'vitest'
import {
  formatDuration,
  generateApiKey,
  hashApiKey,
  IpResolver,
  MemoryKeyRegistry,
  retryAfterSeconds,
  Sluice,
} from '../../src/http/index.js'
import { SluiceInputError, slidingWindow, tokenBucket } from '../../src/index.js'

describe('formatDuration (OpenAI / Go style)', () => {
  const cases: [number, string][] = [
    [0, '0ms'],
    [12, '12ms'],
    [999, '999ms'],
    [1000, '1s'],
    [17_280, '17.28s'],
    [360_000, '6m0s'],
    [3_600_000, '1h0m0s'],
    [3_723_500, '1h2m3.5s'],
  ]
  for (const [ms, text] of cases) it(`${ms} ms → ${text}`, () => expect(formatDuration(ms)).toBe(text))
})

describe('Retry-After seconds', () => {
  it('is rounded up and never 0', () => {
    expect(retryAfterSeconds(1)).toBe(1)
    expect(retryAfterSeconds(0)).toBe(1)
    expect(retryAfterSeconds(1000)).toBe(1)
    expect(retryAfterSeconds(1001)).toBe(2)
  })
})

describe('API keys', () => {
  it('have the sluice prefix and at least 32 URL-safe random characters', () => {
    const keys = new Set(Array.from({ length: 100 }, generateApiKey))
    expect(keys.size).toBe(100)
    for (const key of keys) expect(key).toMatch(/^sk-sluice-[A-Za-z0-9_-]{32,}$/)
  })
  it('are stored as SHA-256 hex hashes', () => {
    expect(hashApiKey('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad')
  })
  it('refuse config entries that hold a key instead of its hash', () => {
    expect(() => new MemoryKeyRegistry([{ hash: generateApiKey(), tier: 'service' }])).toThrow(
      /keys\[0\]\.hash must be hashApiKey/,
    )
  })
})

describe('client address', () => {
  it('normalises IPv4-mapped IPv6 and groups IPv6 by /64', () => {
    const r = new IpResolver()
    expect(r.resolve('::ffff:192.0.2.7', undefined)?.group).toBe('192.0.2.7')
    expect(r.resolve('2001:db8:1:2:aaaa::1', undefined)?.group).toBe('2001:db8:1:2::/64')
    expect(new IpResolver({ ipv6Subnet: 128 }).resolve('2001:db8::1', undefined)?.group).toBe('2001:db8::1')
    expect(new IpResolver({ ipv6Subnet: 48 }).resolve('2001:db8:1:2::1', undefined)?.group).toBe(
      '2001:db8:1::/48',
    )
  })
  it('reads X-Forwarded-For only from trusted proxies', () => {
    const none = new IpResolver()
    expect(none.resolve('10.0.0.1', '203.0.113.9')?.ip).toBe('10.0.0.1')
    const cidr = new IpResolver({ trustProxy: ['10.0.0.0/8'] })
    expect(cidr.resolve('10.0.0.1', '203.0.113.9')?.ip).toBe('203.0.113.9')
    expect(cidr.resolve('198.51.100.1', '203.0.113.9')?.ip).toBe('198.51.100.1')
    // A client-supplied entry to the left of the real one is not believed.
    expect(cidr.resolve('10.0.0.1', '1.1.1.1, 203.0.113.9, 10.0.0.2')?.ip).toBe('203.0.113.9')
    const hops = new IpResolver({ trustProxy: 1 })
    expect(hops.resolve('10.0.0.1', '1.1.1.1, 203.0.113.9')?.ip).toBe('203.0.113.9')
  })
  it('reads RFC 7239 Forwarded when configured, with quotes, brackets and ports', () => {
    const r = new IpResolver({ trustProxy: ['loopback'], forwardedHeader: 'forwarded' })
    expect(r.resolve('127.0.0.1', 'for=192.0.2.60;proto=http;by=203.0.113.43')?.ip).toBe('192.0.2.60')
    expect(r.resolve('::1', 'for="[2001:db8:cafe::17]:4711"')?.group).toBe('2001:db8:cafe::/64')
  })
  it('refuses bad settings naming the option', () => {
    expect(() => new IpResolver({ trustProxy: true as never })).toThrow(/trustProxy/)
    expect(() => new IpResolver({ trustProxy: ['10.0.0.0/33'] })).toThrow(/trustProxy\[0\]/)
    expect(() => new IpResolver({ ipv6Subnet: 0 })).toThrow(/ipv6Subnet/)
  })
})

describe('Sluice options are validated when created', () => {
  const cases: [string, unknown, RegExp][] = [
    ['a typo', { trustProxies: 1 }, /unknown sluice option "trustProxies"/],
    ['bad warnAt', { warnAt: 2 }, /warnAt/],
    ['bad alertAt', { alertAt: -1 }, /alertAt/],
    ['bad header group', { headers: { ietf: 'yes' } }, /headers\.ietf/],
    ['unknown header group', { headers: { draft: true } }, /headers\.draft/],
    [
      'user header without trusted proxies',
      { trustedUserHeader: 'x-user-id' },
      /trustedUserHeader needs trustProxy/,
    ],
    ['bad tier scope', { tiers: { gold: { scope: 'org', limits: {} } } }, /tiers\.gold\.scope/],
    [
      'bad limit in a tier',
      { tiers: { anonymous: { scope: 'ip', limits: { a: { kind: 'tokenBucket', capacity: -1 } } } } },
      /tiers\.anonymous: limits\.a/,
    ],
    [
      'missing anonymous tier',
      { tiers: { gold: { scope: 'key', limits: { a: slidingWindow({ limit: 1, windowMs: 1000 }) } } } },
      /anonymousTier/,
    ],
    ['key of an unknown tier', { keys: [{ hash: hashApiKey('k'), tier: 'gold' }] }, /tier "gold"/],
    ['bad cost unit', { cost: { credits: 1 } }, /unknown unit "credits"/],
    ['negative cost', { cost: -1 }, /cost/],
    ['bad deny list', { deny: { ips: ['not-an-ip'] } }, /deny\.ips\[0\]/],
    ['bad webhook', { webhook: 'ftp://x' }, /webhook\.url/],
    ['bad logger', { logger: {} }, /logger/],
    ['bad block', { block: { after: 0 } }, /block\.after/],
  ]
  for (const [name, options, message] of cases) {
    it(name, () => {
      let error: unknown
      try {
        new Sluice({ logger: false, ...(options as object) })
      } catch (e) {
        error = e
      }
      expect(error).toBeInstanceOf(SluiceInputError)
      expect((error as Error).message).toMatch(message)
    })
  }
  it('accepts no options at all', () => {
    expect(new Sluice({ logger: false }).anonymousTier).toBe('anonymous')
  })
})

describe('headers from a decision', () => {
  it('parse as structured fields; a 429 carries Retry-After ≥ 1 and an OpenAI-shaped body', async () => {
    const s = new Sluice({
      logger: false,
      tiers: {
        anonymous: {
          scope: 'ip',
          limits: {
            minute: slidingWindow({ limit: 3, windowMs: 60_000 }),
            tokens: tokenBucket({ capacity: 1000, refillPerSecond: 10, unit: 'tokens' }),
          },
        },
      },
    })
    const req = { method: 'GET', url: '/', headers: {}, remoteAddress: '192.0.2.1' }
    const first = await s.check(req)
    const policy = parseList(first.headers['ratelimit-policy']!)
    expect(policy.map(([name]) => name)).toEqual(['minute', 'tokens'])
    expect(policy[0]![1].get('q')).toBe(3)
    expect(policy[0]![1].get('w')).toBe(60)
    expect(policy[1]![1].get('qu')).toBe('tokens')
    const rl = parseList(first.headers.ratelimit!)
    expect(rl[0]![0]).toBe('minute')
    expect(rl[0]![1].get('r')).toBe(2)
    await s.check(req)
    await s.check(req)
    const denied = await s.check(req)
    expect(denied.status).toBe(429)
    expect(Number(denied.headers['retry-after'])).toBeGreaterThanOrEqual(1)
    expect(denied.body?.error).toMatchObject({ type: 'requests', code: 'rate_limit_exceeded', param: null })
  })
})
