/**
 * One behaviour suite, run against every adapter (Express, Fastify, Hono, node:http) on real
 * servers on loopback, with the MemoryStore and with a real Redis.
 */
import { randomBytes, randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'
import { parseList } from 'structured-headers'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { defaultTiers, generateApiKey, hashApiKey, type Tier } from '../../src/http/index.js'
import {
  concurrency,
  MemoryStore,
  RedisStore,
  type Store,
  slidingWindow,
  tokenBucket,
} from '../../src/index.js'
import { type RedisServer, startRedis } from '../helpers/redis-server.js'
import { sleep } from '../helpers/sleep.js'
import { ADAPTERS, type AnyOptions, nativeHeader, startApp, type TestApp } from './apps.js'
import { call, callMany, count } from './client.js'

const MINUTE = 60_000

/** An anonymous tier with one request limit of `limit` per minute, and nothing else. */
function perMinute(limit: number, extra: Record<string, Tier> = {}): Record<string, Tier> {
  return {
    anonymous: { scope: 'ip', limits: { minute: slidingWindow({ limit, windowMs: MINUTE }) } },
    ...extra,
  }
}

let redis: RedisServer
let client: Redis
beforeAll(async () => {
  redis = await startRedis()
  client = new Redis(redis.url)
})
afterAll(async () => {
  client.disconnect()
  await redis.stop()
})

const STORES = ['memory', 'redis'] as const

describe.each(STORES)('with the %s store', (storeKind) => {
  describe.each(ADAPTERS)('%s', (adapter) => {
    const apps: TestApp[] = []
    afterEach(async () => {
      await Promise.all(apps.splice(0).map((a) => a.close()))
    })

    /** Starts the app; each gets a fresh store (memory) or its own key prefix (Redis). */
    async function start(options: AnyOptions = {}): Promise<TestApp> {
      const store: Store = storeKind === 'memory' ? new MemoryStore() : new RedisStore({ client })
      const app = await startApp(adapter, {
        logger: false,
        store,
        prefix: `t-${randomBytes(6).toString('hex')}:`,
        ...options,
      })
      apps.push(app)
      return app
    }

    it('with no options (or only a store): default tiers per IP, every header group, then 429', async () => {
      const app =
        storeKind === 'memory' ? await startApp(adapter, undefined) : await start({ logger: undefined })
      apps.push(app)
      const ok = []
      for (let i = 0; i < 20; i++) ok.push(await call(`${app.url}/hello`))
      expect(ok.map((r) => r.status)).toEqual(Array(20).fill(200))
      expect(ok[0]!.body).toMatchObject({ kind: 'ip', subject: 'ip:127.0.0.1', tier: 'anonymous' })

      const first = ok[0]!.headers
      const policy = parseList(first.get('ratelimit-policy')!)
      expect(Object.fromEntries(policy.map(([name, params]) => [name, params.get('q')]))).toEqual({
        hourly: 20,
        tokens: 10_000,
        burst: 20,
      })
      expect(policy.find(([n]) => n === 'hourly')![1].get('w')).toBe(3600)
      expect(policy.find(([n]) => n === 'burst')![1].get('w')).toBe(10)
      const remaining = ok.map((r) => parseList(r.headers.get('ratelimit')!)[0]![1].get('r'))
      expect(remaining).toEqual(Array.from({ length: 20 }, (_, i) => 19 - i))
      expect(first.get('x-ratelimit-limit')).toBe('20')
      expect(first.get('x-ratelimit-remaining')).toBe('19')
      expect(Number(first.get('x-ratelimit-reset'))).toBeGreaterThan(Date.now() / 1000 - 5)
      expect(first.get('x-ratelimit-limit-requests')).toBe('20')
      expect(first.get('x-ratelimit-remaining-requests')).toBe('19')
      expect(first.get('x-ratelimit-reset-requests')).toMatch(/^(\d+h)?(\d+m)?\d+(\.\d+)?(ms|s)$/)
      expect(first.get('x-ratelimit-limit-tokens')).toBe('10000')
      expect(ok[19]!.headers.get('x-ratelimit-warning')).toMatch(/^Only 0 of 20 requests left/)
      expect(ok[19]!.body.level).toBe('warn')

      const denied = await call(`${app.url}/hello`)
      expect(denied.status).toBe(429)
      expect(denied.body.error).toMatchObject({ type: 'requests', code: 'rate_limit_exceeded', param: null })
      expect(denied.body.error.message).toMatch(/Please try again in/)
      expect(parseList(denied.headers.get('ratelimit')!)[0]![1].get('r')).toBe(0)
      // The wait is most of an hour: longer than maxRetryWaitMs, so SDKs are told not to sleep it out.
      expect(Number(denied.headers.get('retry-after'))).toBeGreaterThan(60)
      expect(denied.headers.get('x-should-retry')).toBe('false')
    })

    it('charges a route its own cost', async () => {
      const app = await start({ tiers: perMinute(12) })
      const a = await call(`${app.url}/expensive`, {}, 'POST')
      expect(a.status).toBe(200)
      expect(a.headers.get('x-ratelimit-remaining')).toBe('7')
      const b = await call(`${app.url}/hello`)
      expect(b.headers.get('x-ratelimit-remaining')).toBe('6')
      await call(`${app.url}/expensive`, {}, 'POST')
      const c = await call(`${app.url}/expensive`, {}, 'POST')
      expect(c.status).toBe(429)
      expect((await call(`${app.url}/hello`)).headers.get('x-ratelimit-remaining')).toBe('0')
    })

    it("charges what a route's (async) cost function says", async () => {
      const app = await start({ tiers: perMinute(12) })
      const a = await call(`${app.url}/priced`, { 'x-cost': '3' }, 'POST')
      expect(a.status).toBe(200)
      expect(a.headers.get('x-ratelimit-remaining')).toBe('9')
      const b = await call(`${app.url}/priced`, { 'x-cost': '9' }, 'POST')
      expect(b.headers.get('x-ratelimit-remaining')).toBe('0')
      expect((await call(`${app.url}/priced`, { 'x-cost': '1' }, 'POST')).status).toBe(429)
    })

    it('counts a request once when the same limiter is applied twice', async () => {
      const app = await start({ tiers: perMinute(10) })
      expect((await call(`${app.url}/twice`)).headers.get('x-ratelimit-remaining')).toBe('9')
      expect((await call(`${app.url}/twice`)).headers.get('x-ratelimit-remaining')).toBe('8')
    })

    it('sets the headers on error responses and streamed ones, not on unlimited routes', async () => {
      const app = await start({ tiers: perMinute(10) })
      const boom = await call(`${app.url}/boom`)
      expect(boom.status).toBe(500)
      expect(boom.headers.get('ratelimit')).toMatch(/^"minute";r=9;t=\d+$/)
      expect(boom.headers.get('x-ratelimit-remaining-requests')).toBe('9')
      const streamed = await call(`${app.url}/stream`)
      expect(streamed.status).toBe(200)
      expect(streamed.text).toBe('chunk 0\nchunk 1\nchunk 2\n')
      expect(streamed.headers.get('ratelimit')).toMatch(/^"minute";r=8;t=\d+$/)
      const health = await call(`${app.url}/health`)
      expect(health.status).toBe(200)
      expect(health.headers.get('ratelimit')).toBeNull()
    })

    it('switches header groups off', async () => {
      const app = await start({ tiers: perMinute(10), headers: { ietf: false, openai: false } })
      const r = await call(`${app.url}/hello`)
      expect(r.headers.get('ratelimit')).toBeNull()
      expect(r.headers.get('ratelimit-policy')).toBeNull()
      expect(r.headers.get('x-ratelimit-limit-requests')).toBeNull()
      expect(r.headers.get('x-ratelimit-limit')).toBe('10')
    })

    describe('spoofing', () => {
      it('random X-User-ID without a trusted proxy: every request lands in the IP bucket', async () => {
        const app = await start({ tiers: { ...perMinute(5), authenticated: defaultTiers().authenticated! } })
        const replies = await callMany(`${app.url}/hello`, 40, () => ({ 'x-user-id': randomUUID() }))
        expect(count(replies, 200)).toBe(5)
        expect(count(replies, 429)).toBe(35)
        for (const r of replies.filter((x) => x.status === 200)) expect(r.body.subject).toBe('ip:127.0.0.1')
      })

      it('trustedUserHeader counts only from a trusted proxy', async () => {
        const tiers = {
          ...perMinute(5),
          authenticated: { scope: 'user', limits: perMinute(3).anonymous!.limits },
        } as Record<string, Tier>
        const trusted = await start({ tiers, trustProxy: ['loopback'], trustedUserHeader: 'x-user-id' })
        const a = await callMany(`${trusted.url}/hello`, 8, (i) => ({ 'x-user-id': `u${i % 2}` }), 1)
        expect(count(a, 200)).toBe(6) // 3 each for two users
        expect(a[0]!.body).toMatchObject({ kind: 'user', subject: 'user:u0', tier: 'authenticated' })
        const untrusted = await start({ tiers, trustProxy: ['10.0.0.0/8'], trustedUserHeader: 'x-user-id' })
        const b = await callMany(`${untrusted.url}/hello`, 8, (i) => ({ 'x-user-id': `u${i}` }), 1)
        expect(count(b, 200)).toBe(5)
        expect(b[0]!.body.kind).toBe('ip')
      })

      it('random X-API-Key: 401, and after the failed-auth limit 429 for further guesses from that IP', async () => {
        const key = generateApiKey()
        const app = await start({
          tiers: { ...perMinute(100), service: { scope: 'key', limits: perMinute(100).anonymous!.limits } },
          keys: [{ hash: hashApiKey(key), tier: 'service', id: 'svc' }],
          failedAuth: { limit: 3, windowMs: MINUTE },
        })
        const good = await call(`${app.url}/hello`, { 'x-api-key': key })
        expect(good.status).toBe(200)
        expect(good.body).toMatchObject({ kind: 'key', subject: 'key:svc', tier: 'service' })
        const bearer = await call(`${app.url}/hello`, { authorization: `Bearer ${key}` })
        expect(bearer.body.subject).toBe('key:svc')
        const guesses = await callMany(`${app.url}/hello`, 6, () => ({ 'x-api-key': generateApiKey() }), 1)
        expect(guesses.map((r) => r.status)).toEqual([401, 401, 401, 429, 429, 429])
        expect(guesses[0]!.body.error).toMatchObject({ code: 'invalid_api_key', param: null })
        expect(guesses[3]!.headers.get('x-should-retry')).toBe('false')
        // A valid key, and requests without a key, are not affected by the lockout.
        expect((await call(`${app.url}/hello`, { 'x-api-key': key })).status).toBe(200)
        expect((await call(`${app.url}/hello`)).status).toBe(200)
      })

      it('an Authorization header other than "Bearer <key>" is a failed authentication, never anonymous', async () => {
        const key = generateApiKey()
        const app = await start({
          tiers: { ...perMinute(100), service: { scope: 'key', limits: perMinute(100).anonymous!.limits } },
          keys: [{ hash: hashApiKey(key), tier: 'service', id: 'svc' }],
          failedAuth: { limit: 3, windowMs: MINUTE },
        })
        const malformed = [`Bearer ${key} ${key}`, 'Basic dXNlcjpwYXNzd29yZA==', 'Bearer', `Token ${key}`]
        const replies = []
        for (const authorization of malformed) replies.push(await call(`${app.url}/hello`, { authorization }))
        expect(replies.map((r) => r.status)).toEqual([401, 401, 401, 429])
        expect(replies[0]!.body.error).toMatchObject({ code: 'invalid_api_key', param: null })
        expect(replies[0]!.headers.get('www-authenticate')).toBe('Bearer')
        // The valid key, and requests with no Authorization at all, still pass.
        expect((await call(`${app.url}/hello`, { authorization: `Bearer ${key}` })).body.subject).toBe(
          'key:svc',
        )
        expect((await call(`${app.url}/hello`)).body.subject).toBe('ip:127.0.0.1')
      })

      it('an app that uses Authorization for its own tokens leaves it out of apiKeyHeaders: not read', async () => {
        const key = generateApiKey()
        const keys = [{ hash: hashApiKey(key), tier: 'service', id: 'svc' }]
        const tiers = {
          ...perMinute(100),
          service: { scope: 'key', limits: perMinute(100).anonymous!.limits },
        }
        const own = await start({ tiers, keys, apiKeyHeaders: ['x-api-key'] } as AnyOptions)
        const noKeys = await start({ tiers: perMinute(100) })
        for (const app of [own, noKeys]) {
          for (const authorization of ['Basic dXNlcjpwYXNzd29yZA==', 'Bearer eyJhbGciOiJIUzI1NiJ9.e30.x']) {
            const reply = await call(`${app.url}/hello`, { authorization })
            expect(reply.status).toBe(200)
            expect(reply.body.subject).toBe('ip:127.0.0.1')
          }
        }
        expect((await call(`${own.url}/hello`, { 'x-api-key': key })).body.subject).toBe('key:svc')
      })

      it('X-Forwarded-For from an untrusted peer is ignored', async () => {
        // No proxy trusted at all, and proxies trusted elsewhere than this peer.
        for (const trustProxy of [undefined, ['10.0.0.0/8']]) {
          const app = await start({ tiers: perMinute(5), trustProxy })
          const replies = await callMany(`${app.url}/hello`, 20, (i) => ({
            'x-forwarded-for': `198.51.100.${i}`,
          }))
          expect(count(replies, 200)).toBe(5)
          for (const r of replies.filter((x) => x.status === 200)) expect(r.body.subject).toBe('ip:127.0.0.1')
        }
      })

      it('1,000 IPv6 addresses in one /64 share one bucket', async () => {
        const app = await start({ tiers: perMinute(20), trustProxy: ['loopback'] })
        const prefix = '2001:db8:1234:5678'
        const replies = await callMany(`${app.url}/hello`, 1000, () => ({
          'x-forwarded-for': `${prefix}:${[0, 0, 0, 0].map(() => randomBytes(2).toString('hex')).join(':')}`,
        }))
        expect(count(replies, 200)).toBe(20)
        expect(count(replies, 429)).toBe(980)
        expect(replies.find((r) => r.status === 200)!.body.subject).toBe(`ip:${prefix}::/64`)
        const other = await call(`${app.url}/hello`, { 'x-forwarded-for': '2001:db8:1234:5679::1' })
        expect(other.status).toBe(200)
        const mapped = await call(`${app.url}/hello`, { 'x-forwarded-for': '::ffff:203.0.113.5' })
        expect(mapped.body.subject).toBe('ip:203.0.113.5')
      })
    })

    it('identity: API key > authenticated user > IP, with per-key limit overrides', async () => {
      const key = generateApiKey()
      const capped = generateApiKey()
      const tiers = {
        ...perMinute(50),
        authenticated: { scope: 'user', limits: perMinute(50).anonymous!.limits },
        premium: { scope: 'user', limits: perMinute(500).anonymous!.limits },
        service: { scope: 'key', limits: perMinute(1000).anonymous!.limits },
      } as Record<string, Tier>
      const app = await start({
        tiers,
        keys: [
          { hash: hashApiKey(key), tier: 'service', id: 'k1' },
          {
            hash: hashApiKey(capped),
            tier: 'service',
            id: 'k2',
            limits: { minute: slidingWindow({ limit: 2, windowMs: MINUTE }) },
          },
        ],
        authenticate: (req: unknown) => {
          const user = nativeHeader(req, 'x-test-session')
          return user === undefined
            ? null
            : { id: user, tier: user.startsWith('vip') ? 'premium' : undefined }
        },
      })
      const anon = await call(`${app.url}/hello`)
      expect(anon.body).toMatchObject({ kind: 'ip', tier: 'anonymous' })
      const user = await call(`${app.url}/hello`, { 'x-test-session': 'alice' })
      expect(user.body).toMatchObject({ kind: 'user', subject: 'user:alice', tier: 'authenticated' })
      const vip = await call(`${app.url}/hello`, { 'x-test-session': 'vip-bob' })
      expect(vip.body).toMatchObject({ subject: 'user:vip-bob', tier: 'premium' })
      expect(vip.headers.get('x-ratelimit-limit')).toBe('500')
      const both = await call(`${app.url}/hello`, { 'x-test-session': 'alice', 'x-api-key': key })
      expect(both.body).toMatchObject({ kind: 'key', subject: 'key:k1', tier: 'service' })
      expect(both.headers.get('x-ratelimit-limit')).toBe('1000')
      const own = await callMany(`${app.url}/hello`, 3, () => ({ 'x-api-key': capped }), 1)
      expect(own.map((r) => r.status)).toEqual([200, 200, 429])
      expect(own[0]!.headers.get('x-ratelimit-limit')).toBe('2')
    })

    it('deny list → 403 (IP, user, key); allow list → not limited', async () => {
      const key = generateApiKey()
      const tiers = {
        ...perMinute(1),
        service: { scope: 'key', limits: perMinute(1).anonymous!.limits },
      } as Record<string, Tier>
      const denied = await start({ tiers, deny: { ips: ['127.0.0.0/8'] } })
      const r = await call(`${denied.url}/hello`)
      expect(r.status).toBe(403)
      expect(r.body.error).toMatchObject({ code: 'access_denied', param: null })
      const byKey = await start({
        tiers,
        keys: [{ hash: hashApiKey(key), tier: 'service', id: 'bad' }],
        deny: { keys: ['bad'] },
      })
      expect((await call(`${byKey.url}/hello`, { 'x-api-key': key })).status).toBe(403)
      expect((await call(`${byKey.url}/hello`)).status).toBe(200)
      const byUser = await start({
        tiers: { ...tiers, authenticated: { scope: 'user', limits: perMinute(1).anonymous!.limits } },
        authenticate: (req: unknown) => nativeHeader(req, 'x-test-session'),
        deny: { users: ['mallory'] },
      })
      expect((await call(`${byUser.url}/hello`, { 'x-test-session': 'mallory' })).status).toBe(403)
      expect((await call(`${byUser.url}/hello`, { 'x-test-session': 'alice' })).status).toBe(200)
      const allowed = await start({ tiers, allow: { ips: ['::1', '127.0.0.1'] } })
      const many = await callMany(`${allowed.url}/hello`, 5)
      expect(many.map((x) => x.status)).toEqual([200, 200, 200, 200, 200])
      expect(many[0]!.headers.get('ratelimit')).toBeNull()
      expect(many[0]!.body.allowListed).toBe(true)
    })

    it('graduated response: one alert at 80 %, warn under 10 %, then 429', async () => {
      const app = await start({ tiers: perMinute(10) })
      const alerts: unknown[] = []
      app.core.events.on('alert', (e) => alerts.push(e))
      const replies = await callMany(`${app.url}/hello`, 12, () => ({}), 1)
      expect(replies.map((r) => r.body.level ?? r.status)).toEqual([
        'ok',
        'ok',
        'ok',
        'ok',
        'ok',
        'ok',
        'ok',
        'alert',
        'ok',
        'warn',
        429,
        429,
      ])
      expect(alerts).toHaveLength(1)
      expect(alerts[0]).toMatchObject({
        event: 'sluice.alert',
        subject: 'ip:127.0.0.1',
        tier: 'anonymous',
        limit: { name: 'minute', limit: 10 },
      })
      expect(replies[9]!.headers.get('x-ratelimit-warning')).toContain('"minute"')
      expect(replies[8]!.headers.get('x-ratelimit-warning')).toBeNull()
    })

    it('blocks a subject that keeps hitting 429, with x-should-retry: false, until unblocked', async () => {
      const app = await start({
        tiers: perMinute(2),
        block: { after: 3, withinMs: MINUTE, durationsMs: [120_000] },
        // The counter's wait can pass 60 s: only the block should say x-should-retry: false here.
        maxRetryWaitMs: 10 * MINUTE,
      })
      const blocks: unknown[] = []
      app.core.events.on('block', (e) => blocks.push(e))
      const replies = await callMany(`${app.url}/hello`, 7, () => ({}), 1)
      expect(replies.map((r) => r.status)).toEqual([200, 200, 429, 429, 429, 429, 429])
      expect(replies[3]!.headers.get('x-should-retry')).toBeNull()
      const blocked = replies[6]!
      expect(blocked.headers.get('x-should-retry')).toBe('false')
      expect(Number(blocked.headers.get('retry-after'))).toBeGreaterThan(100)
      expect(blocked.body.error.message).toMatch(/blocked/)
      expect(blocks).toHaveLength(1)
      await app.core.unblock('ip:127.0.0.1')
      const after = await call(`${app.url}/hello`)
      expect(after.status).toBe(429)
      expect(after.headers.get('x-should-retry')).toBeNull()
    })

    it('shadow mode counts and reports but lets every request through', async () => {
      const app = await start({ tiers: perMinute(2), shadow: true })
      const shadows: unknown[] = []
      app.core.events.on('shadow', (e) => shadows.push(e))
      const replies = await callMany(`${app.url}/hello`, 5, () => ({}), 1)
      expect(replies.map((r) => r.status)).toEqual([200, 200, 200, 200, 200])
      expect(replies.map((r) => r.body.shadowed)).toEqual([false, false, true, true, true])
      expect(replies[4]!.headers.get('retry-after')).toBeNull()
      expect(shadows).toHaveLength(3)
    })

    it('a concurrency limit: 429 with a short advertised retry while the slot is held, free once the holder goes away', async () => {
      const tiers: Record<string, Tier> = {
        anonymous: {
          scope: 'ip',
          limits: {
            minute: slidingWindow({ limit: 1000, windowMs: MINUTE }),
            inflight: concurrency({ limit: 1, leaseMs: 60_000 }),
          },
        },
      }
      // No blocks here: polling for the slot racks up denials, and blocks are tested on their own.
      const app = await start({ tiers, block: false })
      // A call that holds the slot until the client gives up on it.
      const holder = new AbortController()
      const slow = fetch(`${app.url}/slow?ms=3000`, { signal: holder.signal }).catch(() => undefined)
      const until = Date.now() + 20_000
      let busy = await call(`${app.url}/hello`)
      while (busy.status === 200 && Date.now() < until) {
        await sleep(10)
        busy = await call(`${app.url}/hello`)
      }
      expect(busy.status).toBe(429)
      // Leases expire in 60 s, but a call in flight usually ends much sooner: the advertised wait is capped.
      expect(Number(busy.headers.get('retry-after-ms'))).toBeLessThanOrEqual(1000)
      expect(busy.headers.get('retry-after')).toBe('1')
      holder.abort()
      await slow
      // The aborted response closed: its slot is released.
      let free = await call(`${app.url}/hello`)
      while (free.status !== 200 && Date.now() < until) {
        await sleep(20)
        free = await call(`${app.url}/hello`)
      }
      expect(free.status).toBe(200)
    })

    it('a retry shorter than a second is still Retry-After: 1 (never 0)', async () => {
      const tiers: Record<string, Tier> = {
        // One at a time, the next one 800 ms later: every wait is under a second.
        anonymous: { scope: 'ip', limits: { fast: tokenBucket({ capacity: 1, refillPerSecond: 1.25 }) } },
      }
      const app = await start({ tiers, block: false })
      const replies = await callMany(`${app.url}/hello`, 10, () => ({}), 10)
      const denied = replies.filter((r) => r.status === 429)
      expect(denied.length).toBeGreaterThan(0)
      for (const r of denied) {
        expect(r.headers.get('retry-after')).toBe('1')
        expect(Number(r.headers.get('retry-after-ms'))).toBeGreaterThanOrEqual(1)
        expect(Number(r.headers.get('retry-after-ms'))).toBeLessThanOrEqual(800)
      }
    })
  })
})

describe('every 429', () => {
  // Each 429 any test here receives is checked as it arrives (client.ts); this one makes its own,
  // so that the file's last test passes alone too.
  it.each(ADAPTERS)('%s: Retry-After ≥ 1 and retry-after-ms on each', async (adapter) => {
    const app = await startApp(adapter, { logger: false, tiers: perMinute(2), block: false })
    try {
      const replies = await callMany(`${app.url}/hello`, 6, () => ({}), 1)
      const denied = replies.filter((r) => r.status === 429)
      expect(denied).toHaveLength(4)
      for (const r of denied) {
        expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
        expect(Number(r.headers.get('retry-after-ms'))).toBeGreaterThanOrEqual(1)
      }
    } finally {
      await app.close()
    }
  })
})
