import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { AdminEventFeed, LatencyRecorder } from '../../../src/control/admin/index.js'
import { type Control, type LedgerEntry, openControl, periodBounds } from '../../../src/control/index.js'
import { slidingWindow } from '../../../src/core/limits.js'
import { type Decision, Limiter } from '../../../src/limiter.js'
import { MemoryStore } from '../../../src/store/memory.js'
import { type AdminFixture, type Answer, DATABASES, documentValidator, startAdmin } from './harness.js'
import { openSse } from './sse-client.js'

const MINUTE = 60_000

/**
 * The routes the dashboard reads besides the CRUD ones: usage over time, refusals by limit, spend
 * in the current period, live limits of many subjects, the gateway's latency, and the events feed
 * as a list and as server-sent events — on a real server over SQLite and PostgreSQL.
 */
describe.each(DATABASES)(
  'admin API: series, spend, latency, inspect and events on %s',
  (_name, makeHarness) => {
    const harness = makeHarness()
    const store = new MemoryStore()
    const limiter = new Limiter({
      store,
      policy: 'service',
      limits: { hourly: slidingWindow({ limit: 10, windowMs: 3_600_000 }) },
    })
    const feed = new AdminEventFeed({ capacity: 5 })
    const latency = new LatencyRecorder()
    let control: Control
    let admin: AdminFixture
    let bare: AdminFixture
    let check: ReturnType<typeof documentValidator>
    const now = Date.now()
    const valid = (component: string, answer: Answer) => {
      expect(answer.status, answer.text).toBe(200)
      expect(check.errors(component, answer.json), answer.text).toBeUndefined()
    }

    beforeAll(async () => {
      await harness.setup()
      control = await openControl({ url: harness.url() })
      admin = await startAdmin(control, {
        events: feed,
        eventStreams: { keepAliveMs: 100, maxStreams: 2 },
        latency: () => latency.snapshot(),
        requestTimeoutMs: 1000,
        subjects: {
          async inspect(subject): Promise<Record<string, Decision>> {
            return subject.startsWith('key:') ? { service: await limiter.peek(subject, { requests: 0 }) } : {}
          },
          async unblock(subject) {
            await limiter.unblock(subject)
          },
        },
      })
      bare = await startAdmin(control)
      check = documentValidator((await admin.call('GET', '/admin/v1/openapi.json')).json)
      const rows: LedgerEntry[] = [
        {
          time: now - 30 * MINUTE,
          keyId: 'aaaaaaaaaa',
          team: 'red',
          status: 200,
          outcome: 'ok',
          tokens: 100,
          usd: 2,
        },
        {
          time: now - 30 * MINUTE,
          keyId: 'aaaaaaaaaa',
          status: 429,
          outcome: 'rate_limited',
          reason: 'tokens',
        },
        {
          time: now - 20 * MINUTE,
          keyId: 'bbbbbbbbbb',
          status: 429,
          outcome: 'rate_limited',
          reason: 'tokens',
        },
        {
          time: now - 10 * MINUTE,
          keyId: 'bbbbbbbbbb',
          status: 429,
          outcome: 'rate_limited',
          reason: 'budget',
        },
        {
          time: now - 10 * MINUTE,
          keyId: 'bbbbbbbbbb',
          team: 'red',
          status: 200,
          outcome: 'ok',
          tokens: 5,
          usd: 0.5,
        },
        { time: now - 5 * MINUTE, status: 401, outcome: 'unauthenticated' },
      ]
      for (const r of rows) control.ledger.append(r)
      await control.ledger.flush()
    })
    afterAll(async () => {
      await admin?.close()
      await bare?.close()
      await store.close()
      await control?.close()
      await harness.teardown()
    })

    it('usage per minute over the last hour, every bucket, overall and per key', async () => {
      const all = await admin.call(
        'GET',
        `/admin/v1/usage/series?from=${now - 60 * MINUTE}&to=${now}&step=1m`,
      )
      valid('UsageSeries', all)
      expect(all.json.points.length).toBeGreaterThanOrEqual(60)
      const sum = (field: string) =>
        all.json.points.reduce((a: number, p: Record<string, number>) => a + p[field]!, 0)
      expect([sum('requests'), sum('served'), sum('refused'), sum('rateLimited')]).toEqual([6, 2, 4, 3])
      expect(sum('usd')).toBeCloseTo(2.5, 12)
      const one = await admin.call(
        'GET',
        `/admin/v1/usage/series?from=${now - 60 * MINUTE}&key=bbbbbbbbbb&step=5m`,
      )
      valid('UsageSeries', one)
      expect(one.json.points.reduce((a: number, p: { requests: number }) => a + p.requests, 0)).toBe(3)
      for (const [query, param] of [
        ['step=1m', 'from'],
        [`from=${now}&step=7m`, 'step'],
        [`from=${now - 3 * 86_400_000}&step=1m`, 'step'],
        [`from=${now}&colour=red`, 'colour'],
      ]) {
        const bad = await admin.call('GET', `/admin/v1/usage/series?${query}`)
        expect(bad.status, query).toBe(400)
        expect(bad.json.error.param, query).toBe(param)
      }
    })

    it('the share of 429s by the limit that refused', async () => {
      const answer = await admin.call(
        'GET',
        `/admin/v1/usage?from=${now - 60 * MINUTE}&status=429&groupBy=reason&sort=requests`,
      )
      valid('UsageReport', answer)
      expect(
        answer.json.items.map((g: { group: string; requests: number }) => [g.group, g.requests]),
      ).toEqual([
        ['tokens', 2],
        ['budget', 1],
      ])
    })

    it('spend in the current period per key and team, largest first, narrowed by id', async () => {
      const { start, end } = periodBounds('month', Date.now())
      const keys = await admin.call('GET', '/admin/v1/spend?scope=key&period=month')
      valid('Spend', keys)
      expect(keys.json).toMatchObject({ scope: 'key', period: 'month', start: new Date(start).toISOString() })
      expect(keys.json.end).toBe(new Date(end).toISOString())
      // Rows from 30 minutes ago may fall in the previous month on the 1st just after midnight.
      const inPeriod = now - 30 * MINUTE >= start
      if (inPeriod) {
        expect(keys.json.items.map((i: { id: string; usd: number }) => [i.id, i.usd])).toEqual([
          ['aaaaaaaaaa', 2],
          ['bbbbbbbbbb', 0.5],
        ])
        const teams = await admin.call('GET', '/admin/v1/spend?scope=team&period=month')
        expect(teams.json.items).toEqual([{ id: 'red', usd: 2.5, tokens: 105, requests: 2 }])
      }
      const narrowed = await admin.call(
        'GET',
        '/admin/v1/spend?scope=key&period=day&id=bbbbbbbbbb&id=nobodyxxxx',
      )
      valid('Spend', narrowed)
      expect(narrowed.json.items.every((i: { id: string }) => i.id === 'bbbbbbbbbb')).toBe(true)
      const bad = await admin.call('GET', '/admin/v1/spend?scope=planet&period=day')
      expect(bad.status).toBe(400)
      expect(bad.json.error.param).toBe('scope')
    })

    it("the gateway's added latency, or 501 where none is measured", async () => {
      for (const ms of [1, 2, 3, 4, 100]) latency.record(ms)
      const answer = await admin.call('GET', '/admin/v1/latency')
      valid('Latency', answer)
      expect(answer.json).toMatchObject({ count: 5, p50Ms: 3, p99Ms: 100, maxMs: 100 })
      const none = await bare.call('GET', '/admin/v1/latency')
      expect(none.status).toBe(501)
      expect(none.json.error.code).toBe('not_implemented')
    })

    it('inspects many subjects at once, in order, charging nothing', async () => {
      await limiter.consume('key:aaaaaaaaaa', { requests: 3 })
      const answer = await admin.call('POST', '/admin/v1/subjects/inspect', {
        body: { subjects: ['key:aaaaaaaaaa', 'ip:192.0.2.1', 'key:bbbbbbbbbb'] },
      })
      valid('SubjectStates', answer)
      expect(answer.json.items.map((i: { subject: string }) => i.subject)).toEqual([
        'key:aaaaaaaaaa',
        'ip:192.0.2.1',
        'key:bbbbbbbbbb',
      ])
      expect(answer.json.items[0].tiers[0].limits[0]).toMatchObject({
        name: 'hourly',
        limit: 10,
        remaining: 7,
      })
      expect(answer.json.items[1].tiers).toEqual([])
      expect(answer.json.items[2].tiers[0].limits[0].remaining).toBe(10)
      // Looking charged nothing.
      expect((await limiter.peek('key:aaaaaaaaaa', { requests: 0 })).limits[0]!.remaining).toBe(7)
      const tooMany = await admin.call('POST', '/admin/v1/subjects/inspect', {
        body: { subjects: Array.from({ length: 101 }, (_, i) => `key:${i}`) },
      })
      expect(tooMany.status).toBe(400)
      expect(tooMany.json.error.param).toBe('subjects')
      const badOne = await admin.call('POST', '/admin/v1/subjects/inspect', {
        body: { subjects: ['nobody'] },
      })
      expect(badOne.json.error.param).toBe('subjects[0]')
      expect(
        (await bare.call('POST', '/admin/v1/subjects/inspect', { body: { subjects: ['key:x'] } })).status,
      ).toBe(501)
    })

    it('/status names the configured tiers', async () => {
      const status = await admin.call('GET', '/admin/v1/status')
      valid('Status', status)
      expect(status.json.tiers).toEqual(['anonymous', 'authenticated', 'premium', 'service'])
    })

    it('the events feed: newest first, filtered, paged, bounded; 501 without a feed', async () => {
      for (let i = 1; i <= 7; i++) {
        feed.publish({ type: i % 2 ? 'alert' : 'block', subject: `key:k${i}`, message: `event ${i}` })
      }
      const first = await admin.call('GET', '/admin/v1/events?limit=2')
      valid('AdminEventPage', first)
      expect(first.json.stream).toBe(feed.stream)
      expect(first.json.items.map((e: { message: string }) => e.message)).toEqual(['event 7', 'event 6'])
      const second = await admin.call('GET', `/admin/v1/events?limit=2&cursor=${first.json.next}`)
      const third = await admin.call('GET', `/admin/v1/events?limit=2&cursor=${second.json.next}`)
      // Capacity 5: events 1 and 2 are gone.
      expect([...second.json.items, ...third.json.items].map((e: { message: string }) => e.message)).toEqual([
        'event 5',
        'event 4',
        'event 3',
      ])
      expect(third.json.next).toBeUndefined()
      const alerts = await admin.call('GET', '/admin/v1/events?type=alert')
      expect(alerts.json.items.map((e: { message: string }) => e.message)).toEqual([
        'event 7',
        'event 5',
        'event 3',
      ])
      const one = await admin.call('GET', '/admin/v1/events?subject=key:k6')
      expect(one.json.items).toHaveLength(1)
      expect((await admin.call('GET', '/admin/v1/events?type=party')).json.error.param).toBe('type')
      expect((await admin.call('GET', '/admin/v1/events?cursor=abc')).json.error.param).toBe('cursor')
      expect((await bare.call('GET', '/admin/v1/events')).status).toBe(501)
      expect((await bare.call('GET', '/admin/v1/events/stream')).status).toBe(501)
    })

    it('streams events as they happen, resumes from Last-Event-ID, keeps alive, needs the token', async () => {
      const url = `${admin.server.url}/admin/v1/events/stream`
      const refused = await openSse(url, {})
      expect(refused.status).toBe(401)
      refused.close()

      const live = await openSse(url, { authorization: `Bearer ${admin.token}` })
      expect(live.status).toBe(200)
      expect(live.headers.get('content-type')).toBe('text/event-stream; charset=utf-8')
      expect(live.headers.get('cache-control')).toBe('no-store')
      const hello = await live.next()
      expect(hello?.retry).toBe('2000')
      // Without Last-Event-ID, only what comes next; a keep-alive comment arrives on an idle stream,
      // and the stream outlives the server's request timeout (1 s here).
      const idle = await live.until((f) => f.comments.includes('keep-alive'))
      expect(idle.every((f) => f.data === undefined)).toBe(true)
      await new Promise((r) => setTimeout(r, 1500))
      const published = feed.publish({ type: 'store', severity: 'critical', message: 'Redis is unavailable' })
      const frames = await live.until((f) => f.data !== undefined)
      const got = frames.at(-1)!
      expect(got).toMatchObject({ id: published.id, event: 'store' })
      expect(check.errors('AdminEvent', JSON.parse(got.data!))).toBeUndefined()
      expect(JSON.parse(got.data!)).toEqual(published)
      live.close()

      // Back with the id of an event still held: exactly what came after it.
      const earlier = feed.list({ limit: 3 }).items.at(-1)!
      const resumed = await openSse(url, {
        authorization: `Bearer ${admin.token}`,
        'last-event-id': earlier.id,
      })
      const replay = await resumed.until((f) => f.id === published.id)
      expect(replay.filter((f) => f.id !== undefined).map((f) => f.id)).toEqual(
        feed
          .list({ limit: 2 })
          .items.map((e) => e.id)
          .reverse(),
      )
      resumed.close()

      // Back with an id the buffer no longer holds: told how many were lost, then everything held.
      const old = await openSse(url, {
        authorization: `Bearer ${admin.token}`,
        'last-event-id': `${feed.stream}-1`,
      })
      const withGap = await old.until((f) => f.id === published.id)
      const gap = withGap.find((f) => f.event === 'gap')
      expect(JSON.parse(gap!.data!)).toEqual({ missed: feed.published - 5 - 1 })
      expect(withGap.filter((f) => f.id !== undefined)).toHaveLength(5)
      old.close()

      // An id from before a restart (another stream): everything this process published is new to
      // the reader — what is held, and the count of what is not.
      const other = await openSse(url, {
        authorization: `Bearer ${admin.token}`,
        'last-event-id': 'zzzzzzzz-3',
      })
      const all = await other.until((f) => f.id === published.id)
      expect(JSON.parse(all.find((f) => f.event === 'gap')!.data!)).toEqual({ missed: feed.published - 5 })
      expect(all.filter((f) => f.id !== undefined)).toHaveLength(5)
      other.close()
    })

    it('bounds the open streams, and ends them when the server closes', async () => {
      const url = `${admin.server.url}/admin/v1/events/stream`
      const auth = { authorization: `Bearer ${admin.token}` }
      const a = await openSse(url, auth)
      const b = await openSse(url, auth)
      await a.next()
      await b.next()
      const c = await openSse(url, auth)
      expect(c.status).toBe(503)
      const body = await c.next().catch(() => undefined)
      expect(body).toBeUndefined()
      a.close()
      // A closed reader frees its place.
      await expect
        .poll(async () => {
          const d = await openSse(url, auth)
          d.close()
          return d.status
        })
        .toBe(200)

      // A server with a stream open closes at once, ending the stream.
      const extra = await startAdmin(control, { events: feed })
      const open = await openSse(`${extra.server.url}/admin/v1/events/stream`, {
        authorization: `Bearer ${extra.token}`,
      })
      await open.next()
      await extra.close()
      expect(await open.until((f) => f.data !== undefined, 5000).catch((e: Error) => e.message)).toMatch(
        /ended before/,
      )
      b.close()
    })
  },
)
