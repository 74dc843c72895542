import { createHash } from 'node:crypto'
import { parseList } from 'structured-headers'
import { describe, expect, it } from 'vitest'
import {
  advertisedRetryMs,
  formatDuration,
  generateApiKey,
  hashApiKey,
  IpResolver,
  MemoryKeyRegistry,
  retryAfterSeconds,
  Sluice,
  tightestLimit,
} from '../../src/http/index.js'
import { MemoryStore, SluiceInputError, slidingWindow, tokenBucket } from '../../src/index.js'

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
    // Keys outside ASCII hash as their UTF-8 bytes, as createHash's update(key, 'utf8') did.
    for (const key of ['sk-sluice-café-日本-🚀', generateApiKey()]) {
      expect(hashApiKey(key)).toBe(createHash('sha256').update(Buffer.from(key, 'utf8')).digest('hex'))
    }
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
    [
      'bad tier store',
      {
        tiers: {
          anonymous: { scope: 'ip', limits: { a: slidingWindow({ limit: 1, windowMs: 1000 }) }, store: {} },
        },
      },
      /tiers\.anonymous\.store/,
    ],
    ['bad failed-auth store', { failedAuth: { store: 'redis' } }, /failedAuth\.store/],
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

/** The fields of a Decision that the header tests below do not vary. */
const DECISION = {
  allowed: true,
  retryAfterMs: 0,
  deniedBy: undefined as string | undefined,
  blocked: false,
  blockedNow: false,
  verified: true,
  fallback: undefined,
  alerts: [],
  policy: 'p',
  subject: 's',
  now: 0,
}

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

describe('the core used step by step (as the gateway does)', () => {
  const tiers = {
    anonymous: {
      scope: 'ip' as const,
      limits: {
        burst: tokenBucket({ capacity: 20, refillPerSecond: 1 }),
        budget: tokenBucket({ capacity: 2.5, refillPerSecond: 1 / 86_400, unit: 'usd' }),
      },
    },
    service: { scope: 'key' as const, limits: { minute: slidingWindow({ limit: 100, windowMs: 60_000 }) } },
  }
  const key = generateApiKey()
  const req = (headers: Record<string, string> = {}, remoteAddress = '198.51.100.7') => ({
    method: 'POST',
    url: '/v1/chat/completions',
    headers,
    remoteAddress,
  })

  it('identifies, reserves, graduates and answers; a cost above the capacity can never pass', async () => {
    const s = new Sluice({
      logger: false,
      tiers,
      keys: [{ hash: hashApiKey(key), tier: 'service', id: 'k' }],
    })
    const id = await s.identify(req({ authorization: `Bearer ${key}` }))
    expect(id.identity).toMatchObject({
      kind: 'key',
      subject: 'key:k',
      tier: 'service',
      keyHash: hashApiKey(key),
    })
    const anon = (await s.identify(req())).identity!
    const limiter = s.limiterFor(anon)
    const tooBig = await limiter.reserve(anon.subject, { requests: 25 })
    expect(tooBig.allowed).toBe(false)
    expect(s.graduate(anon, tooBig.decision).level).toBe('throttle')
    const denial = s.denial(tooBig.decision)
    expect(denial.headers['retry-after']).toBeUndefined()
    expect(denial.headers['x-should-retry']).toBe('false')
    expect(denial.body.error.message).toMatch(/can ever allow/)
  })

  it('a dollar budget: insufficient_quota; "spent" only when it is, else how much is left', async () => {
    // A clock that stands still: the budget refills ~0.01 micro-dollars a millisecond, so a
    // millisecond passing between two calls would move the exact waits below ("11h59m59.999s").
    const s = new Sluice({ logger: false, tiers, store: new MemoryStore({ now: () => 1_750_000_000_000 }) })
    const anon = (await s.identify(req())).identity!
    const limiter = s.limiterFor(anon)
    expect((await limiter.reserve(anon.subject, { usd: 2 })).allowed).toBe(true)
    // Real time does pass between the calls (and must change nothing):
    await new Promise((resolve) => setTimeout(resolve, 5))
    const tooDear = await limiter.reserve(anon.subject, { usd: 1 })
    const denial = s.denial(tooDear.decision, { requests: 1, usd: 1 })
    expect(denial.body.error).toMatchObject({ type: 'insufficient_quota', code: 'insufficient_quota' })
    expect(denial.body.error.message).toBe(
      'This call\'s worst-case cost ($1) exceeds what is left of budget "budget": $0.5 of $2.5 at once, refilled over 60h0m0s. A smaller call may pass now; this one can pass in 12h0m0s.',
    )
    // A wait of hours: clients are told not to sleep through it.
    expect(denial.headers['x-should-retry']).toBe('false')
    expect(Number(denial.headers['retry-after'])).toBeGreaterThan(3600)
    // The budget is listed in micro-dollars, and RateLimit says what is left of it.
    expect(denial.headers['ratelimit-policy']).toBe(
      '"burst";q=20;w=20, "budget";q=2500000;qu="usd-micros";w=216000',
    )
    expect(denial.headers.ratelimit).toBe('"budget";r=500000;t=43200')
    expect((await limiter.reserve(anon.subject, { usd: 0.5 })).allowed).toBe(true)
    const spent = s.denial((await limiter.reserve(anon.subject, { usd: 0.01 })).decision)
    expect(spent.body.error.message).toMatch(
      /^Budget "budget" \(\$2\.5 at once, refilled over 60h0m0s\) is spent\. It allows more in 14m/,
    )
  })

  it('answers an unknown key with 401 and WWW-Authenticate, a deny-listed address with 403', async () => {
    const s = new Sluice({
      logger: false,
      tiers,
      keys: [{ hash: hashApiKey(key), tier: 'service' }],
      deny: { ips: ['203.0.113.0/24'] },
    })
    const bad = await s.identify(req({ 'x-api-key': generateApiKey() }))
    expect(bad.refusal).toMatchObject({ status: 401, reason: 'invalid_api_key' })
    expect(bad.refusal!.headers['www-authenticate']).toBe('Bearer')
    const denied = await s.identify(req({}, '203.0.113.77'))
    expect(denied.refusal).toMatchObject({ status: 403, reason: 'deny_list' })
    // A JWT in Authorization is not a key when only X-API-Key carries keys.
    const jwtApp = new Sluice({ logger: false, tiers, keys: [], apiKeyHeaders: ['x-api-key'] })
    const jwt = await jwtApp.identify(req({ authorization: 'Bearer eyJhbGciOi.eyJzdWIi.sig' }))
    expect(jwt.refusal).toBeUndefined()
    expect(jwt.identity?.kind).toBe('ip')
  })

  it('inspects and unblocks a subject across its tiers', async () => {
    const s = new Sluice({ logger: false, tiers, block: { after: 2, durationsMs: [60_000] } })
    const r = req()
    for (let i = 0; i < 20; i++) expect((await s.check(r)).status).toBe(200)
    expect((await s.check(r)).state.level).toBe('throttle')
    expect((await s.check(r)).state.level).toBe('block')
    const seen = await s.inspect('ip:198.51.100.7')
    expect(Object.keys(seen)).toEqual(['anonymous'])
    expect(seen.anonymous!.blocked).toBe(true)
    await s.unblock('ip:198.51.100.7')
    expect((await s.inspect('ip:198.51.100.7')).anonymous!.blocked).toBe(false)
  })

  it('caps the advertised wait of a concurrency denial unless another denying limit needs longer', () => {
    const base = { ...DECISION, allowed: false, retryAfterMs: 120_000, deniedBy: 'inflight' }
    const inflight = {
      name: 'inflight',
      unit: 'concurrent',
      kind: 'concurrency' as const,
      limit: 1,
      remaining: 0,
      resetMs: 120_000,
      windowSeconds: 120,
      allowed: false,
    }
    const minute = {
      name: 'minute',
      unit: 'requests',
      kind: 'slidingWindow' as const,
      limit: 5,
      remaining: 0,
      resetMs: 30_000,
      windowSeconds: 60,
      allowed: false,
    }
    expect(advertisedRetryMs({ ...base, limits: [inflight] }, 1000)).toBe(1000)
    expect(
      advertisedRetryMs({ ...base, limits: [inflight, { ...minute, allowed: true, remaining: 3 }] }, 1000),
    ).toBe(1000)
    expect(advertisedRetryMs({ ...base, limits: [inflight, minute] }, 1000)).toBe(30_000)
  })

  it('headers describe a rate limit, not the calls in flight, unless those denied', () => {
    const base = DECISION
    const inflight = {
      name: 'inflight',
      unit: 'concurrent',
      kind: 'concurrency' as const,
      limit: 4,
      remaining: 3,
      resetMs: 120_000,
      windowSeconds: 120,
      allowed: true,
    }
    const hourly = {
      name: 'hourly',
      unit: 'requests',
      kind: 'slidingWindow' as const,
      limit: 20,
      remaining: 19,
      resetMs: 7_200_000,
      windowSeconds: 3600,
      allowed: true,
    }
    expect(tightestLimit({ ...base, limits: [inflight, hourly] })?.name).toBe('hourly')
    const denied = {
      ...base,
      allowed: false,
      deniedBy: 'inflight',
      limits: [{ ...inflight, remaining: 0, allowed: false }, hourly],
    }
    expect(tightestLimit(denied)?.name).toBe('inflight')
  })
})

describe('more graduated-response details', () => {
  const minute = (limit: number) => ({ m: slidingWindow({ limit, windowMs: 60_000 }) })
  const req = (remoteAddress: string) => ({ method: 'GET', url: '/', headers: {}, remoteAddress })

  it('logs an alert as one structured warn line', async () => {
    const lines: { obj: object; msg: string; level: string }[] = []
    const logger = {
      info: (obj: object, msg: string) => lines.push({ obj, msg, level: 'info' }),
      warn: (obj: object, msg: string) => lines.push({ obj, msg, level: 'warn' }),
    }
    const s = new Sluice({ logger, tiers: { anonymous: { scope: 'ip', limits: minute(5) } } })
    for (let i = 0; i < 5; i++) await s.check(req('192.0.2.9'))
    expect(lines).toEqual([
      {
        level: 'warn',
        obj: { subject: 'ip:192.0.2.9', tier: 'anonymous', limit: 'm', used: 0.8 },
        msg: 'sluice alert: ip:192.0.2.9 used 80% of limit "m"',
      },
    ])
  })

  it('shadows one tier while enforcing the others', async () => {
    const s = new Sluice({
      logger: false,
      tiers: {
        anonymous: { scope: 'ip', limits: minute(1), shadow: true },
        authenticated: { scope: 'user', limits: minute(1) },
      },
      authenticate: (r: { headers: Record<string, string> }) => r.headers['x-user'],
    })
    const anon = req('192.0.2.10')
    expect((await s.check(anon)).status).toBe(200)
    const shadowed = await s.check(anon)
    expect(shadowed).toMatchObject({
      proceed: true,
      status: 200,
      state: { shadowed: true, level: 'throttle' },
    })
    const user = { ...anon, headers: { 'x-user': 'u1' } }
    expect((await s.check(user)).status).toBe(200)
    expect((await s.check(user)).status).toBe(429)
  })

  it('groups IPv4 addresses by ipv4Subnet when asked', async () => {
    const s = new Sluice({
      logger: false,
      ipv4Subnet: 24,
      tiers: { anonymous: { scope: 'ip', limits: minute(2) } },
    })
    expect((await s.check(req('198.51.100.1'))).state.identity?.subject).toBe('ip:198.51.100.0/24')
    await s.check(req('198.51.100.200'))
    expect((await s.check(req('198.51.100.77'))).status).toBe(429)
    expect((await s.check(req('198.51.101.1'))).status).toBe(200)
  })
})
