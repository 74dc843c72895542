import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Control, type LedgerEntry, periodBounds } from '../../../src/control/index.js'
import { type ControlHarness, controls } from '../harness.js'

const DAY = 86_400_000

/** Questions asked of the ledger: totals by group, rows page by page, spend per period. */
export function usageContract(harness: ControlHarness): void {
  describe(`usage queries (${harness.name})`, () => {
    const pool = controls(harness)
    let c: Control
    /** Each test counts in its own slice of time, far from the other tests' rows. */
    let slice = 0
    const nextSlice = () => Date.parse('2031-01-01T00:00:00Z') + ++slice * 30 * DAY

    beforeAll(async () => {
      c = await pool.open({ ledger: { intervalMs: 10 } })
    })
    afterAll(() => pool.closeAll())

    it('answers totals grouped by key, team, user, model, tier, status, outcome and day', async () => {
      const t0 = Date.parse('2024-03-10T22:00:00.000Z') // the tests' slices are years before or after
      const rows: LedgerEntry[] = [
        {
          time: t0,
          keyId: 'k1',
          team: 't1',
          user: 'u1',
          model: 'm1',
          tier: 'service',
          status: 200,
          outcome: 'ok',
          promptTokens: 10,
          completionTokens: 5,
          usd: 1,
        },
        {
          time: t0 + 1,
          keyId: 'k1',
          team: 't1',
          user: 'u2',
          model: 'm2',
          tier: 'service',
          status: 200,
          outcome: 'ok',
          promptTokens: 20,
          cachedTokens: 8,
          cacheWriteTokens: 3,
          cacheWrite1hTokens: 4,
          completionTokens: 5,
          reasoningTokens: 2,
          usd: 2,
          usdInput: 1.5,
          usdOutput: 0.5,
          queueMs: 120,
        },
        {
          time: t0 + 2,
          keyId: 'k2',
          team: 't1',
          model: 'm1',
          tier: 'premium',
          status: 429,
          outcome: 'rate_limited',
          reason: 'hourly',
          queueMs: 2000,
        },
        {
          time: t0 + 3 * 3_600_000,
          keyId: 'k3',
          model: 'm1',
          tier: 'premium',
          status: 502,
          outcome: 'upstream_error',
          promptTokens: 7,
          tokens: 7,
          usd: 0.5,
        },
        { time: t0 + 4 * 3_600_000, status: 401, outcome: 'unauthenticated' },
      ]
      for (const r of rows) c.ledger.append(r)
      await c.ledger.flush()
      const range = { from: t0, to: t0 + DAY }
      const total = await c.usage.totals(range)
      expect(total).toEqual([
        {
          group: null,
          requests: 5,
          served: 2,
          refused: 2,
          failed: 1,
          promptTokens: 37,
          cachedTokens: 8,
          cacheWriteTokens: 3,
          cacheWrite1hTokens: 4,
          completionTokens: 10,
          reasoningTokens: 2,
          tokens: 47,
          usd: 3.5,
          usdInput: 1.5,
          usdCached: 0,
          usdCacheWrite: 0,
          usdOutput: 0.5,
          queued: 2,
          queueMs: 2120,
        },
      ])
      const pick = async (
        groupBy: Parameters<Control['usage']['totals']>[0] extends infer Q
          ? Q extends { groupBy?: infer G }
            ? G
            : never
          : never,
      ) => (await c.usage.totals({ ...range, groupBy })).map((g) => [g.group, g.requests, g.usd])
      expect(await pick('key')).toEqual(
        [
          [null, 1, 0],
          ['k1', 2, 3],
          ['k2', 1, 0],
          ['k3', 1, 0.5],
        ].sort(byGroup),
      )
      expect(await pick('team')).toEqual(
        [
          [null, 2, 0.5],
          ['t1', 3, 3],
        ].sort(byGroup),
      )
      expect(await pick('user')).toEqual(
        [
          [null, 3, 0.5],
          ['u1', 1, 1],
          ['u2', 1, 2],
        ].sort(byGroup),
      )
      expect(await pick('model')).toEqual(
        [
          [null, 1, 0],
          ['m1', 3, 1.5],
          ['m2', 1, 2],
        ].sort(byGroup),
      )
      expect(await pick('tier')).toEqual(
        [
          [null, 1, 0],
          ['premium', 2, 0.5],
          ['service', 2, 3],
        ].sort(byGroup),
      )
      expect(await pick('status')).toEqual([
        [200, 2, 3],
        [401, 1, 0],
        [429, 1, 0],
        [502, 1, 0.5],
      ])
      expect(await pick('outcome')).toEqual([
        ['ok', 2, 3],
        ['rate_limited', 1, 0],
        ['unauthenticated', 1, 0],
        ['upstream_error', 1, 0.5],
      ])
      // Days in UTC: 22:00 and 22:00+3h fall on two dates; at UTC+02:00 all five fall on the 11th.
      expect(await pick('day')).toEqual([
        ['2024-03-10', 3, 3],
        ['2024-03-11', 2, 0.5],
      ])
      const shifted = await c.usage.totals({ ...range, groupBy: 'day', utcOffsetMinutes: 120 })
      expect(shifted.map((g) => [g.group, g.requests])).toEqual([['2024-03-11', 5]])
      const top = await c.usage.totals({ ...range, groupBy: 'key', sort: 'usd' })
      expect(top[0]!.group).toBe('k1')
      expect((await c.usage.totals({ ...range, team: 't1', model: 'm1' }))[0]!.requests).toBe(2)
      await expect(c.usage.totals({ groupBy: 'secret' as never })).rejects.toMatchObject({ field: 'groupBy' })
    })

    it('answers a series: every bucket of the range, empty ones included, per key or overall', async () => {
      const t0 = nextSlice() + 7 * 60_000 + 30_000 // 00:07:30 of the slice's day
      const rows: LedgerEntry[] = [
        {
          time: t0,
          keyId: 's1',
          status: 200,
          outcome: 'ok',
          promptTokens: 10,
          completionTokens: 2,
          usd: 0.5,
        },
        { time: t0 + 29_999, keyId: 's1', status: 429, outcome: 'rate_limited', reason: 'tokens' },
        { time: t0 + 30_000, keyId: 's2', team: 'st', status: 200, outcome: 'ok', tokens: 7, usd: 0.25 },
        { time: t0 + 3 * 60_000, keyId: 's1', status: 401, outcome: 'unauthenticated' },
        { time: t0 + 3 * 60_000 + 1, keyId: 's1', status: 502, outcome: 'upstream_error', tokens: 3 },
        { time: t0 + 3 * 3_600_000, keyId: 's1', status: 200, outcome: 'ok', tokens: 1, usd: 1 },
      ]
      for (const r of rows) c.ledger.append(r)
      await c.ledger.flush()
      const minute = Math.floor(t0 / 60_000) * 60_000
      const series = await c.usage.series({ from: t0, to: t0 + 5 * 60_000, step: '1m' })
      expect(series).toMatchObject({ from: t0, to: t0 + 5 * 60_000, step: '1m', stepMs: 60_000 })
      // 00:07:30 to 00:12:30: the buckets of 00:07 … 00:12, the first and last ones partial.
      expect(series.points.map((p) => p.time)).toEqual([0, 1, 2, 3, 4, 5].map((i) => minute + i * 60_000))
      expect(series.points.map((p) => [p.requests, p.served, p.refused, p.rateLimited, p.failed])).toEqual([
        [2, 1, 1, 1, 0],
        [1, 1, 0, 0, 0],
        [0, 0, 0, 0, 0],
        [2, 0, 1, 0, 1],
        [0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0],
      ])
      expect(series.points.map((p) => p.tokens)).toEqual([12, 7, 0, 3, 0, 0])
      expect(series.points[0]!.usd).toBeCloseTo(0.5, 12)
      const perKey = await c.usage.series({ from: t0, to: t0 + 5 * 60_000, key: 's2' })
      expect(perKey.points.map((p) => p.requests)).toEqual([0, 1, 0, 0, 0, 0])
      const hours = await c.usage.series({ from: t0, to: t0 + 4 * 3_600_000, step: '1h', team: 'st' })
      expect(hours.points.map((p) => p.requests)).toEqual([1, 0, 0, 0, 0])
      const midnight = Math.floor(t0 / DAY) * DAY
      const days = await c.usage.series({ from: midnight, to: midnight + DAY, step: '1d' })
      expect(days.points).toHaveLength(1)
      expect(days.points[0]).toMatchObject({ time: midnight, requests: 6, usd: 1.75 })
      // `to` defaults to the clock; more than 1,500 buckets, a bad step or an empty range are refused.
      expect((await c.usage.series({ from: t0 }, t0 + 90_000)).points).toHaveLength(2)
      await expect(c.usage.series({ from: t0, to: t0 + 2 * DAY, step: '1m' })).rejects.toMatchObject({
        field: 'step',
      })
      await expect(c.usage.series({ from: t0, step: '2m' as never })).rejects.toMatchObject({ field: 'step' })
      await expect(c.usage.series({ from: t0, to: t0 })).rejects.toMatchObject({ field: 'to' })
      await expect(c.usage.series({} as never)).rejects.toMatchObject({ field: 'from' })
    })

    it('groups refusals by the limit that refused (reason)', async () => {
      const t0 = nextSlice()
      const refuse = (reason: string | undefined, status = 429) =>
        c.ledger.append({
          time: t0,
          status,
          outcome: status === 429 ? 'rate_limited' : 'unauthenticated',
          reason,
        })
      for (let i = 0; i < 3; i++) refuse('tokens')
      refuse('hourly')
      refuse('budget')
      refuse(undefined, 401)
      c.ledger.append({ time: t0, status: 200, outcome: 'ok' })
      await c.ledger.flush()
      const byLimit = await c.usage.totals({
        from: t0,
        to: t0 + 1,
        status: 429,
        groupBy: 'reason',
        sort: 'requests',
      })
      expect(byLimit.map((g) => [g.group, g.requests])).toEqual([
        ['tokens', 3],
        ['budget', 1],
        ['hourly', 1],
      ])
    })

    it('pages ledger rows newest first with filters, stable while rows are added', async () => {
      const t0 = nextSlice()
      for (let i = 0; i < 23; i++) {
        c.ledger.append({
          time: t0 + Math.floor(i / 3),
          requestId: `p-${i}`,
          keyId: i % 2 ? 'odd' : 'even',
          status: 200,
          outcome: 'ok',
        })
      }
      await c.ledger.flush()
      const seen: string[] = []
      let cursor: string | undefined
      do {
        const page = await c.usage.rows({ from: t0, to: t0 + DAY, limit: 4, cursor })
        seen.push(...page.items.map((r) => r.requestId!))
        cursor = page.next
        // A row added while paging (newer than everything) never shows up in later pages.
        c.ledger.append({ time: t0 + 1000, requestId: 'late', status: 200, outcome: 'ok' })
        await c.ledger.flush()
      } while (cursor !== undefined)
      // Newest first (rows of equal time by id), each once; rows added meanwhile are newer than the cursor.
      expect(seen).toEqual(Array.from({ length: 23 }, (_, i) => `p-${22 - i}`))
      const odd = await c.usage.rows({ from: t0, to: t0 + 100, key: 'odd', limit: 1000 })
      expect(odd.items).toHaveLength(11)
      expect(odd.next).toBeUndefined()
    })

    it('sums the spend of the current day, week and month per key, team and user (for rebuilding budgets)', async () => {
      const now = Date.parse('2025-06-18T15:00:00.000Z') // a Wednesday
      const at = (iso: string, usd: number, tokens: number, extra: Partial<LedgerEntry> = {}) =>
        c.ledger.append({
          time: Date.parse(iso),
          keyId: 'spender',
          team: 'spend-team',
          user: 'spend-user',
          status: 200,
          outcome: 'ok',
          usd,
          tokens,
          ...extra,
        })
      at('2025-05-31T23:59:59.999Z', 100, 1000) // last month
      at('2025-06-01T00:00:00.000Z', 1, 10) // this month
      at('2025-06-16T00:00:00.000Z', 2, 20) // this week (Monday)
      at('2025-06-18T00:00:00.000Z', 4, 40) // today
      at('2025-06-18T14:00:00.000Z', 8, 80, { limited: false }) // not charged to limits (shadow, allow list)
      at('2025-06-18T16:00:00.000Z', 16, 160) // later today, after `now`: still in the period
      at('2025-06-19T00:00:00.000Z', 32, 320) // tomorrow
      await c.ledger.flush()
      const day = await c.usage.spendInPeriod('key', 'spender', 'day', now)
      expect(day).toMatchObject({ usd: 20, tokens: 200, requests: 2, ...periodBounds('day', now) })
      expect(await c.usage.spendInPeriod('team', 'spend-team', 'week', now)).toMatchObject({
        usd: 54,
        tokens: 540,
      })
      expect(await c.usage.spendInPeriod('user', 'spend-user', 'month', now)).toMatchObject({
        usd: 55,
        tokens: 550,
      })
      expect(await c.usage.spendInPeriod('key', 'nobody', 'month', now)).toMatchObject({
        usd: 0,
        tokens: 0,
        requests: 0,
      })
      const all = await c.usage.spend('key', {
        from: Date.parse('2025-06-01T00:00:00Z'),
        to: Date.parse('2025-07-01T00:00:00Z'),
      })
      expect(all.get('spender')).toEqual({ usd: 55, tokens: 550, requests: 5 })
    })
  })
}

function byGroup(a: unknown[], b: unknown[]): number {
  const x = a[0] === null ? '' : String(a[0])
  const y = b[0] === null ? '' : String(b[0])
  return x < y ? -1 : x > y ? 1 : 0
}
