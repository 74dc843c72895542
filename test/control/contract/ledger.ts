import { fileURLToPath } from 'node:url'
import { sql } from 'kysely'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Control, ControlInputError, type LedgerEntry } from '../../../src/control/index.js'
import { runWorkerScript } from '../../helpers/workers.js'
import { type ControlHarness, controls, manualClock } from '../harness.js'

const WORKER = fileURLToPath(new URL('../fixtures/ledger-worker.ts', import.meta.url))
const DAY = 86_400_000

/** The ledger writer: batches, bounds, failures, concurrency, retention. */
export function ledgerContract(harness: ControlHarness): void {
  describe(`ledger (${harness.name})`, () => {
    const pool = controls(harness)
    const clock = manualClock(Date.parse('2026-11-27T12:00:00.000Z'))
    let c: Control
    /** Each test counts in its own slice of time, far from the others. */
    let slice = 0
    const nextSlice = () => Date.parse('2020-01-01T00:00:00Z') + ++slice * 30 * DAY

    beforeAll(async () => {
      c = await pool.open({ clock: clock.now, ledger: { intervalMs: 10 } })
    })
    afterAll(() => pool.closeAll())

    it('writes every appended row in batches and returns them as appended', async () => {
      const t0 = nextSlice()
      const full: LedgerEntry = {
        time: t0,
        requestId: 'req-1',
        keyId: 'abcdefghij',
        team: 'research',
        user: 'alice',
        tier: 'service',
        subject: 'key:abcdefghij',
        model: 'gpt-4o-mini',
        upstream: 'openai',
        deployment: 'eu-1',
        route: 'chat',
        stream: true,
        status: 200,
        outcome: 'ok',
        reason: 'none',
        limited: true,
        source: 'upstream',
        promptTokens: 1200,
        cachedTokens: 1000,
        cacheWriteTokens: 100,
        cacheWrite1hTokens: 40,
        completionTokens: 300,
        reasoningTokens: 120,
        tokens: 1500,
        usd: 0.00123,
        usdInput: 0.0003,
        usdCached: 0.0002,
        usdCacheWrite: 0.00013,
        usdOutput: 0.0006,
        latencyMs: 812.5,
        fallback: 'local',
        queueMs: 640,
      }
      c.ledger.append(full)
      c.ledger.append({
        time: t0 + 1,
        status: 429,
        outcome: 'rate_limited',
        reason: 'tokens',
        keyId: 'abcdefghij',
      })
      await c.ledger.flush()
      const page = await c.usage.rows({ from: t0, to: t0 + 2 })
      expect(page.items).toHaveLength(2)
      const [refused, served] = page.items
      const { time, ...rest } = full
      expect(served).toMatchObject({ ...rest, time: new Date(t0).toISOString() })
      expect(refused).toMatchObject({
        outcome: 'rate_limited',
        reason: 'tokens',
        status: 429,
        model: null,
        promptTokens: 0,
        tokens: 0,
        usd: 0,
        stream: false,
        limited: true,
        queueMs: null,
      })
    })

    it('refuses a malformed row at append, naming the field, and keeps the rest', async () => {
      const t0 = nextSlice()
      const bad: [Partial<LedgerEntry>, string][] = [
        [{ status: 200, outcome: 'ok', promptTokens: -1 }, 'ledger.promptTokens'],
        [{ status: 200, outcome: 'ok', completionTokens: 1.5 }, 'ledger.completionTokens'],
        [{ status: 200, outcome: 'ok', cacheWrite1hTokens: -3 }, 'ledger.cacheWrite1hTokens'],
        [{ status: 200, outcome: 'ok', usd: Number.NaN }, 'ledger.usd'],
        [{ status: 200, outcome: 'Not OK' }, 'ledger.outcome'],
        [{ status: 99_999, outcome: 'ok' }, 'ledger.status'],
        [{ status: 200, outcome: 'ok', time: -5 }, 'ledger.time'],
        [{ status: 200, outcome: 'ok', model: 42 as never }, 'ledger.model'],
        [{ status: 200, outcome: 'ok', queueMs: -1 }, 'ledger.queueMs'],
      ]
      for (const [entry, field] of bad) {
        expect(() => c.ledger.append({ time: t0, ...entry } as LedgerEntry)).toThrow(ControlInputError)
        try {
          c.ledger.append({ time: t0, ...entry } as LedgerEntry)
        } catch (e) {
          expect((e as ControlInputError).field).toBe(field)
        }
      }
      c.ledger.append({ time: t0, status: 200, outcome: 'ok', model: 'm'.repeat(10_000) })
      await c.ledger.flush()
      const rows = (await c.usage.rows({ from: t0, to: t0 + 1 })).items
      expect(rows).toHaveLength(1)
      expect(rows[0]!.model).toHaveLength(256) // a hostile model name is cut, not stored whole
    })

    it('writes 25,000 rows across many statements and batches, in order, none lost', async () => {
      const t0 = nextSlice()
      const n = 25_000
      for (let i = 0; i < n; i++)
        c.ledger.append({ time: t0 + i, requestId: `bulk-${i}`, status: 200, outcome: 'ok', promptTokens: i })
      await c.ledger.flush()
      const [total] = await c.usage.totals({ from: t0, to: t0 + n })
      expect(total).toMatchObject({ requests: n, promptTokens: (n * (n - 1)) / 2 })
      const stats = c.ledger.stats()
      expect(stats.dropped).toBe(0)
      expect(stats.buffered).toBe(0)
    })

    it('bounds its buffer: rows beyond maxBuffered are dropped and counted, never queued', async () => {
      const small = await pool.open({
        clock: clock.now,
        migrate: false,
        ledger: { maxBuffered: 10, intervalMs: 60_000 },
      })
      const t0 = nextSlice()
      for (let i = 0; i < 15; i++) small.ledger.append({ time: t0, status: 200, outcome: 'ok' })
      expect(small.ledger.stats()).toMatchObject({ buffered: 10, dropped: 5 })
      await small.ledger.flush()
      expect((await c.usage.totals({ from: t0, to: t0 + 1 }))[0]?.requests).toBe(10)
    })

    it('keeps rows through a failing database, reports the failure once, and writes them when it recovers', async () => {
      const events: string[] = []
      let failures = 0
      const w = await pool.open({
        clock: clock.now,
        migrate: false,
        ledger: {
          intervalMs: 5,
          retry: { minMs: 5, maxMs: 20 },
          onBatchFailed: () => failures++,
          onStateChange: (s) => events.push(s),
        },
      })
      const t0 = nextSlice()
      await c.database.db.schema.alterTable('ledger').renameTo('ledger_away').execute()
      try {
        for (let i = 0; i < 50; i++) w.ledger.append({ time: t0 + i, status: 200, outcome: 'ok' })
        await expect(w.ledger.flush()).rejects.toThrow()
        await new Promise((r) => setTimeout(r, 100)) // background retries keep failing
        expect(events).toEqual(['down'])
        expect(failures).toBeGreaterThanOrEqual(2)
        expect(w.ledger.stats()).toMatchObject({ buffered: 50, written: 0, state: 'down' })
      } finally {
        await c.database.db.schema.alterTable('ledger_away').renameTo('ledger').execute()
      }
      await expect.poll(() => w.ledger.stats().written, { timeout: 10_000 }).toBe(50)
      expect(events).toEqual(['down', 'up'])
      expect((await c.usage.totals({ from: t0, to: t0 + 50 }))[0]?.requests).toBe(50)
    })

    if (harness.dialect === 'postgres') {
      it('counts the rows of a batch being written as buffered until they commit', async () => {
        const w = await pool.open({ clock: clock.now, migrate: false, ledger: { intervalMs: 60_000 } })
        const t0 = nextSlice()
        const blocker = new pg.Client({ connectionString: harness.url() })
        await blocker.connect()
        try {
          await blocker.query('begin')
          await blocker.query('lock table ledger in exclusive mode') // inserts wait, reads do not
          for (let i = 0; i < 20; i++) w.ledger.append({ time: t0, status: 200, outcome: 'ok' })
          const flushed = w.ledger.flush()
          await expect
            .poll(
              async () => {
                const r = await c.database.db
                  .selectFrom(
                    sql<{ wait_event_type: string | null; query: string }>`pg_stat_activity`.as('a'),
                  )
                  .select(sql<number>`count(*)`.as('n'))
                  .where(sql<boolean>`wait_event_type = 'Lock' and query ilike 'insert into%ledger%'`)
                  .executeTakeFirst()
                return Number(r?.n)
              },
              { timeout: 10_000 },
            )
            .toBe(1)
          expect(w.ledger.stats()).toMatchObject({ buffered: 20, written: 0 })
          await blocker.query('commit')
          await flushed
          expect(w.ledger.stats()).toMatchObject({ buffered: 0, written: 20 })
        } finally {
          await blocker.end()
        }
      })
    }

    it('keeps ledger batches out of admin transactions: a rolled-back change loses no ledger row', async () => {
      const t0 = nextSlice()
      await c.teams.create({ id: `busy-${t0}` }, { actor: 'test' })
      await c.keys.create({ name: 'pin', tier: 'service', team: `busy-${t0}` }, { actor: 'test' })
      for (let round = 0; round < 40; round++) {
        for (let i = 0; i < 10; i++) c.ledger.append({ time: t0 + round, status: 200, outcome: 'ok' })
        // The delete reads, then refuses (the team owns a key) and rolls back; the flush starts a
        // few more microtasks later each round, so that it meets the transaction at every step.
        const flush = async () => {
          for (let j = 0; j < round; j++) await null
          return c.ledger.flush()
        }
        const results = await Promise.allSettled([c.teams.delete(`busy-${t0}`, { actor: 'test' }), flush()])
        expect(results.map((r) => r.status)).toEqual(['rejected', 'fulfilled'])
      }
      expect((await c.usage.totals({ from: t0, to: t0 + 40 }))[0]?.requests).toBe(400)
    })

    it('writes everything on close and drops (counting) what is appended after', async () => {
      const w = await pool.open({ clock: clock.now, migrate: false, ledger: { intervalMs: 60_000 } })
      const t0 = nextSlice()
      for (let i = 0; i < 30; i++) w.ledger.append({ time: t0, status: 200, outcome: 'ok' })
      const stats = await w.ledger.close()
      expect(stats).toMatchObject({ written: 30, dropped: 0, buffered: 0, state: 'closed' })
      w.ledger.append({ time: t0, status: 200, outcome: 'ok' })
      expect(w.ledger.stats().dropped).toBe(1)
      expect((await c.usage.totals({ from: t0, to: t0 + 1 }))[0]?.requests).toBe(30)
    })

    it('two writer processes appending at once lose and duplicate nothing', async () => {
      const reports = await runWorkerScript<
        { url: string; writer: string; rows: number },
        { written: number; dropped: number }
      >(WORKER, [
        { url: harness.url(), writer: 'writer-a', rows: 6000 },
        { url: harness.url(), writer: 'writer-b', rows: 6000 },
      ])
      expect(reports).toEqual([
        { written: 6000, dropped: 0 },
        { written: 6000, dropped: 0 },
      ])
      for (const writer of ['writer-a', 'writer-b']) {
        const rows = await c.database.db
          .selectFrom('ledger')
          .select(['id', 'request_id'])
          .where('key_id', '=', writer)
          .execute()
        expect(rows).toHaveLength(6000)
        expect(new Set(rows.map((r) => r.request_id)).size).toBe(6000)
        expect(new Set(rows.map((r) => Number(r.id))).size).toBe(6000)
      }
    })

    it('prunes rows older than the retention in bounded chunks', async () => {
      const w = await pool.open({ clock: clock.now, migrate: false })
      const t0 = Date.parse('2019-01-01T00:00:00Z') // before every other test's rows
      for (let i = 0; i < 120; i++) w.ledger.append({ time: t0 + i, status: 200, outcome: 'ok' })
      await w.ledger.flush()
      const before = t0 + 100
      const first = await w.pruneLedger({ before, chunkRows: 30, maxChunks: 2 })
      expect(first).toEqual({ deleted: 60, more: true })
      const second = await w.pruneLedger({ before, chunkRows: 30, maxChunks: 5 })
      expect(second).toEqual({ deleted: 40, more: false })
      expect((await w.usage.totals({ from: t0, to: t0 + 1000 }))[0]?.requests).toBe(20)
    })
  })
}
