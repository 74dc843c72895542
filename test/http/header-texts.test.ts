/**
 * The header texts made from tables and remembered parts (number-text.ts, formatDuration, the
 * policy text per policy) must read exactly as String() and the plain formatting would, whatever
 * order values come in: a remembered part (the leading digits, a table entry, the last policy)
 * must never be served for another value, another policy or a limit changed under the same name.
 */
import { describe, expect, it } from 'vitest'
import { formatDuration, PolicyHeaderCache, rateLimitPolicyHeader } from '../../src/http/headers.js'
import { Sluice } from '../../src/http/index.js'
import { WholeTexts } from '../../src/http/number-text.js'
import { type Decision, fixedWindow, type LimitStatus, tokenBucket } from '../../src/index.js'
import { MemoryStore } from '../../src/store/memory.js'
import { DEFAULT_HEADER_NAMES } from '../helpers/default-headers.js'

/** A small seeded generator: the same sequence on every run. */
function random(seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (Math.imul(s, 1_664_525) + 1_013_904_223) >>> 0
    return s / 2 ** 32
  }
}

/** formatDuration as it was written before its tables: the reference. */
function plainDuration(ms: number): string {
  if (!Number.isFinite(ms)) return 'inf'
  const whole = ms > 0 ? Math.ceil(ms) : 0
  if (whole < 1000) return `${whole}ms`
  const hours = Math.floor(whole / 3_600_000)
  const minutes = Math.floor((whole % 3_600_000) / 60_000)
  const secs = Math.floor((whole % 60_000) / 1000)
  const milli = whole % 1000
  const seconds =
    milli === 0
      ? `${secs}s`
      : milli % 100 === 0
        ? `${secs}.${milli / 100}s`
        : milli % 10 === 0
          ? `${secs}.${milli < 100 ? '0' : ''}${milli / 10}s`
          : `${secs}.${milli < 10 ? '00' : milli < 100 ? '0' : ''}${milli}s`
  if (hours > 0) return `${hours}h${minutes}m${seconds}`
  if (minutes > 0) return `${minutes}m${seconds}`
  return seconds
}

const EDGES = [
  0,
  -0,
  1,
  9,
  10,
  99,
  100,
  999,
  1000,
  9999,
  10_000,
  10_001,
  19_999,
  99_999,
  100_000,
  999_999_999,
  1_000_000_000,
  1_764_633_600,
  Number.MAX_SAFE_INTEGER - 1,
  Number.MAX_SAFE_INTEGER,
  Number.MAX_SAFE_INTEGER + 1,
  2 ** 60,
  1e21,
  -1,
  -10_001,
  0.5,
  12_345.5,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
]

describe('WholeTexts', () => {
  it('reads as String() for edge values, each asked twice (made, then remembered)', () => {
    const texts = new WholeTexts()
    for (const n of [...EDGES, ...EDGES]) expect(texts.text(n), String(n)).toBe(String(n))
  })

  it('reads as String() with its prefix, values in any order: the leading digits are never stale', () => {
    const plain = new WholeTexts()
    const wait = new WholeTexts(';t=')
    const next = random(7)
    for (let i = 0; i < 20_000; i++) {
      // Values whose leading digits change on every call, repeat, or move by one step.
      const pick = next()
      const n =
        pick < 0.3
          ? Math.floor(next() * 1e12)
          : pick < 0.6
            ? 999_990_000 - i
            : pick < 0.8
              ? Math.floor(next() * 30_000)
              : Math.floor(next() * 10_000) * 10_000 + (i % 10_000)
      expect(plain.text(n)).toBe(String(n))
      expect(wait.text(n)).toBe(`;t=${n}`)
    }
  })

  it('counts down across a change of its leading digits and back', () => {
    const texts = new WholeTexts()
    for (let n = 1_000_010_005; n >= 999_989_995; n--) expect(texts.text(n)).toBe(String(n))
    for (let n = 9_990; n <= 10_010; n++) expect(texts.text(n)).toBe(String(n))
    for (let n = 10_010; n >= 9_990; n--) expect(texts.text(n)).toBe(String(n))
  })
})

describe('formatDuration from tables', () => {
  it('reads as the plain formatting for edge values, each asked twice', () => {
    const values = [
      ...EDGES,
      1,
      12,
      500,
      1001,
      1010,
      1100,
      1500,
      17_280,
      59_999,
      60_000,
      360_000,
      3_599_999,
      3_600_000,
      3_723_500,
      3_723_050,
      3_723_005,
      999 * 3_600_000 + 1,
      1000 * 3_600_000 + 1,
      86_400_000 * 400 + 7,
      12.3,
      999.5,
    ]
    for (const ms of [...values, ...values]) expect(formatDuration(ms), String(ms)).toBe(plainDuration(ms))
  })

  it('reads as the plain formatting for random durations in any order', () => {
    const next = random(11)
    for (let i = 0; i < 20_000; i++) {
      const scale = [1_000, 60_000, 3_600_000, 86_400_000, 1e12][i % 5]!
      const ms = next() < 0.1 ? next() * scale : Math.floor(next() * scale)
      expect(formatDuration(ms)).toBe(plainDuration(ms))
    }
  })
})

describe('the policy text, remembered per policy', () => {
  const status = (name: string, limit: number, windowSeconds: number, unit = 'requests'): LimitStatus => ({
    name,
    unit: unit as LimitStatus['unit'],
    kind: 'fixedWindow',
    limit,
    remaining: limit,
    resetMs: 0,
    windowSeconds,
    allowed: true,
  })
  const decision = (policy: string, limits: LimitStatus[]): Decision => ({
    allowed: true,
    retryAfterMs: 0,
    deniedBy: undefined,
    blocked: false,
    blockedNow: false,
    verified: true,
    fallback: undefined,
    limits,
    alerts: [],
    policy,
    subject: 'ip:192.0.2.1',
    now: 0,
  })

  it('is the text of the limits asked about: two policies in turn, a limit changed under the same name', () => {
    const cache = new PolicyHeaderCache()
    const a = () => decision('a', [status('minute', 60, 60)])
    const b = () => decision('b', [status('hourly', 200, 3600), status('tokens', 5000, 3600, 'tokens')])
    const aChanged = () => decision('a', [status('minute', 120, 60)])
    const aWindow = () => decision('a', [status('minute', 120, 30)])
    const aRenamed = () => decision('a', [status('burst', 120, 30)])
    const order = [a, a, b, a, b, b, aChanged, aChanged, a, aWindow, aRenamed, b, aRenamed, a]
    for (const make of order) {
      const d = make()
      expect(cache.get(d)).toBe(rateLimitPolicyHeader(d.limits))
    }
    expect(cache.get(a())).toBe('"minute";q=60;w=60')
    expect(cache.get(aChanged())).toBe('"minute";q=120;w=60')
    expect(cache.get(b())).toBe('"hourly";q=200;w=3600, "tokens";q=5000;qu="tokens";w=3600')
  })
})

describe('every header of three tiers answered in turn', () => {
  const T = Date.UTC(2026, 0, 5, 7, 0, 0)
  const store = new MemoryStore({ now: () => T })
  const core = new Sluice<{ headers: Record<string, string> }>({
    store,
    logger: false,
    alertAt: false,
    tiers: {
      // Crosses 10,000 left on its fourth call: from a remembered leading part to the table.
      anonymous: { scope: 'ip', limits: { burst: tokenBucket({ capacity: 10_002, refillPerSecond: 1 }) } },
      authenticated: { scope: 'user', limits: { minute: fixedWindow({ limit: 50, windowMs: 60_000 }) } },
      premium: {
        scope: 'user',
        limits: {
          hourly: fixedWindow({ limit: 20_000, windowMs: 3_600_000 }),
          tokens: tokenBucket({ capacity: 1_000_000, refillPerSecond: 1000, unit: 'tokens' }),
        },
      },
    },
    authenticate: (r) =>
      r.headers['x-user'] === undefined
        ? undefined
        : { id: r.headers['x-user'], tier: r.headers['x-user'] === 'p1' ? 'premium' : 'authenticated' },
  })
  const request = (user?: string) => ({
    method: 'POST',
    url: '/v1/chat',
    headers: user === undefined ? {} : { 'x-user': user },
    remoteAddress: '192.0.2.30',
  })
  const epoch = (ms: number) => String(Math.ceil((T + ms) / 1000))

  it('reads as the figures of each tier, in the same order, whatever tier came before', async () => {
    for (let k = 1; k <= 6; k++) {
      const anonymous = await core.check(request())
      expect(anonymous.headers).toEqual({
        'ratelimit-policy': '"burst";q=10002;w=10002',
        ratelimit: `"burst";r=${10_002 - k};t=${k}`,
        'x-ratelimit-limit': '10002',
        'x-ratelimit-remaining': String(10_002 - k),
        'x-ratelimit-reset': epoch(k * 1000),
        'x-ratelimit-limit-requests': '10002',
        'x-ratelimit-remaining-requests': String(10_002 - k),
        'x-ratelimit-reset-requests': plainDuration(k * 1000),
      })
      expect(Object.keys(anonymous.headers)).toEqual(DEFAULT_HEADER_NAMES)
      const user = await core.check(request('u1'))
      expect(user.headers).toEqual({
        'ratelimit-policy': '"minute";q=50;w=60',
        ratelimit: `"minute";r=${50 - k};t=60`,
        'x-ratelimit-limit': '50',
        'x-ratelimit-remaining': String(50 - k),
        'x-ratelimit-reset': epoch(60_000),
        'x-ratelimit-limit-requests': '50',
        'x-ratelimit-remaining-requests': String(50 - k),
        'x-ratelimit-reset-requests': '1m0s',
      })
      const premium = await core.check(request('p1'), undefined, { requests: 1, tokens: 7 * k })
      const spent = (7 * k * (k + 1)) / 2
      expect(premium.headers).toEqual({
        'ratelimit-policy': '"hourly";q=20000;w=3600, "tokens";q=1000000;qu="tokens";w=1000',
        ratelimit: `"hourly";r=${20_000 - k};t=3600`,
        'x-ratelimit-limit': '20000',
        'x-ratelimit-remaining': String(20_000 - k),
        'x-ratelimit-reset': epoch(3_600_000),
        'x-ratelimit-limit-requests': '20000',
        'x-ratelimit-remaining-requests': String(20_000 - k),
        'x-ratelimit-reset-requests': '1h0m0s',
        'x-ratelimit-limit-tokens': '1000000',
        'x-ratelimit-remaining-tokens': String(1_000_000 - spent),
        'x-ratelimit-reset-tokens': plainDuration(spent),
      })
      expect(Object.keys(premium.headers).slice(-3)).toEqual([
        'x-ratelimit-limit-tokens',
        'x-ratelimit-remaining-tokens',
        'x-ratelimit-reset-tokens',
      ])
    }
    await core.close()
    await store.close()
  })
})
