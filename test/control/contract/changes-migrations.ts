import { fileURLToPath } from 'node:url'
import { sql } from 'kysely'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { PollingChangeFeed } from '../../../src/control/changes-sqlite.js'
import {
  appliedMigrations,
  type ChangeEvent,
  type Control,
  LISTENER_APPLICATION_NAME,
  MIGRATION_NAMES,
  migrateTo,
  openControl,
  openDatabase,
} from '../../../src/control/index.js'
import { runWorkerScript } from '../../helpers/workers.js'
import { ACTOR, type ControlHarness, controls } from '../harness.js'

const OPEN_WORKER = fileURLToPath(new URL('../fixtures/open-worker.ts', import.meta.url))

/** Generous: the test asserts that a change arrives, not how fast (speed is the feed's design, ~1 s). */
const ARRIVES_WITHIN = { timeout: 15_000, interval: 20 }

/** Two instances on one database see each other's changes; migrations are versioned and idempotent. */
export function changesMigrationsContract(harness: ControlHarness): void {
  describe(`change feed and key cache across instances (${harness.name})`, () => {
    const pool = controls(harness)
    let a: Control
    let b: Control

    beforeAll(async () => {
      a = await pool.open({ changes: { pollIntervalMs: 50 } })
      b = await pool.open({ changes: { pollIntervalMs: 50, healthIntervalMs: 200, deadlineMs: 2000 } })
    })
    afterAll(() => pool.closeAll())

    it("delivers one instance's key, team and user changes to the other", async () => {
      const seen: ChangeEvent[] = []
      const off = b.changes.subscribe((e) => seen.push(e))
      await b.changes.ready()
      const key = await a.keys.create({ name: 'feed', tier: 'service' }, ACTOR)
      await a.teams.create({ id: 'feed-team' }, ACTOR)
      await a.users.set('feed-user', { metadata: { x: 1 } }, ACTOR)
      await expect
        .poll(() => seen, ARRIVES_WITHIN)
        .toEqual(
          expect.arrayContaining([
            { kind: 'key', id: key.id },
            { kind: 'team', id: 'feed-team' },
            { kind: 'user', id: 'feed-user' },
          ]),
        )
      expect(b.changes.state).toBe('up')
      off()
    })

    it("a key revoked on one instance stops working in the other's cache; a new one works there", async () => {
      const cacheB = b.createKeyCache({ ttlMs: 3_600_000 }) // only the feed can evict within the test
      await cacheB.warm()
      await b.changes.ready()
      const seen: ChangeEvent[] = []
      const off = b.changes.subscribe((e) => seen.push(e))
      const key = await a.keys.create({ name: 'cached', tier: 'service' }, ACTOR)
      // Once the creation's notice has arrived (it evicts the id), the next read fills the cache.
      await expect.poll(() => seen, ARRIVES_WITHIN).toContainEqual({ kind: 'key', id: key.id })
      off()
      expect((await cacheB.lookup(key.key))?.id).toBe(key.id)
      const lookups = cacheB.stats().dbLookups
      expect((await cacheB.lookup(key.key))?.id).toBe(key.id)
      expect(cacheB.stats().dbLookups).toBe(lookups) // served from memory

      await a.keys.revoke(key.id, ACTOR)
      await expect.poll(async () => await cacheB.lookup(key.key), ARRIVES_WITHIN).toBeUndefined()

      const rotated = await a.keys.create({ name: 'rotating', tier: 'service' }, ACTOR)
      await expect.poll(async () => (await cacheB.lookup(rotated.key))?.id, ARRIVES_WITHIN).toBe(rotated.id)
      const next = await a.keys.rotate(rotated.id, ACTOR) // no grace: the old secret stops at once
      await expect.poll(async () => await cacheB.lookup(rotated.key), ARRIVES_WITHIN).toBeUndefined()
      expect((await cacheB.lookup(next.key))?.id).toBe(rotated.id)
      cacheB.close()
    })

    if (harness.dialect === 'postgres') {
      it('reconnects a listening connection that was cut, says "all", and delivers later changes', async () => {
        const seen: ChangeEvent[] = []
        const states: string[] = []
        const c = await pool.open({
          changes: { healthIntervalMs: 200, deadlineMs: 2000, onStateChange: (s) => states.push(s) },
        })
        c.changes.subscribe((e) => seen.push(e))
        await c.changes.ready()
        seen.length = 0
        const admin = new pg.Client({ connectionString: harness.url() })
        await admin.connect()
        try {
          const cut = await admin.query(
            'select pg_terminate_backend(pid) as ok from pg_stat_activity where application_name = $1 and datname = current_database()',
            [LISTENER_APPLICATION_NAME],
          )
          expect(cut.rowCount).toBeGreaterThanOrEqual(1)
        } finally {
          await admin.end()
        }
        await expect.poll(() => states, ARRIVES_WITHIN).toEqual(['down', 'up'])
        expect(seen).toContainEqual({ kind: 'all' })
        const key = await a.keys.create({ name: 'after-cut', tier: 'service' }, ACTOR)
        await expect.poll(() => seen, ARRIVES_WITHIN).toContainEqual({ kind: 'key', id: key.id })
      })
    }

    if (harness.dialect === 'sqlite') {
      it('says "all" when change rows it had not read yet were pruned, then goes on', async () => {
        const seen: ChangeEvent[] = []
        const feed = new PollingChangeFeed(a.database.db, { intervalMs: 3_600_000 })
        feed.subscribe((e) => seen.push(e))
        await feed.ready()
        await a.teams.create({ id: 'pruned-1' }, ACTOR)
        await a.teams.create({ id: 'pruned-2' }, ACTOR)
        await a.pruneChanges(Date.now() + 1000) // both rows gone before the feed read them
        await a.teams.create({ id: 'pruned-3' }, ACTOR)
        await feed.pollNow()
        expect(seen).toEqual([{ kind: 'all' }, { kind: 'team', id: 'pruned-3' }])
        await feed.close()
      })
    }
  })

  describe(`migrations (${harness.name})`, () => {
    it('migrates a new database to the latest version, and opening again applies nothing', async () => {
      const url = await harness.freshUrl()
      const first = await openControl({ url })
      const database = first.database
      expect(await appliedMigrations(database)).toEqual([...MIGRATION_NAMES])
      const again = await first.migrate()
      expect(again).toEqual({ applied: [], version: MIGRATION_NAMES[MIGRATION_NAMES.length - 1] })
      await first.close()
      const second = await openControl({ url })
      expect(await appliedMigrations(second.database)).toEqual([...MIGRATION_NAMES])
      await second.close()
    })

    it('brings an older schema up to date, keeping its data', async () => {
      const url = await harness.freshUrl()
      const old = openDatabase({ url })
      await migrateTo(old, MIGRATION_NAMES[0]!)
      expect(await appliedMigrations(old)).toEqual([MIGRATION_NAMES[0]])
      await old.db
        .insertInto('teams')
        .values({
          id: 'legacy',
          name: 'Legacy',
          limits: null,
          budgets: null,
          metadata: null,
          created_at: 1,
          updated_at: 1,
        })
        .execute()
      await old.close()

      const c = await openControl({ url })
      expect(await appliedMigrations(c.database)).toEqual([...MIGRATION_NAMES])
      expect((await c.teams.get('legacy')).name).toBe('Legacy')
      c.ledger.append({ status: 200, outcome: 'ok' })
      await c.ledger.flush()
      expect((await c.usage.totals())[0]?.requests).toBe(1)
      await c.close()
    })

    it('adds the 1-hour cache-write count to a ledger that has rows: old rows read 0, new rows keep it', async () => {
      const url = await harness.freshUrl()
      const old = openDatabase({ url })
      await migrateTo(old, '0002_ledger')
      // A row as the 0002 schema wrote it (no 1-hour column yet).
      await sql`insert into ledger (time, stream, status, outcome, limited, prompt_tokens, cached_tokens,
        cache_write_tokens, completion_tokens, reasoning_tokens, tokens, usd, usd_input, usd_cached,
        usd_cache_write, usd_output, latency_ms)
        values (1000, 0, 200, 'ok', 1, 50, 10, 20, 5, 0, 55, 0.5, 0.1, 0.1, 0.2, 0.1, 3)`.execute(old.db)
      await old.close()

      const c = await openControl({ url })
      expect(await appliedMigrations(c.database)).toEqual([...MIGRATION_NAMES])
      c.ledger.append({
        time: 2000,
        status: 200,
        outcome: 'ok',
        promptTokens: 90,
        cacheWriteTokens: 20,
        cacheWrite1hTokens: 30,
        completionTokens: 5,
      })
      await c.ledger.flush()
      const rows = (await c.usage.rows({ from: 0, to: 3000 })).items
      expect(rows.map((r) => [r.time, r.cacheWriteTokens, r.cacheWrite1hTokens])).toEqual([
        [new Date(2000).toISOString(), 20, 30],
        [new Date(1000).toISOString(), 20, 0],
      ])
      const [total] = await c.usage.totals({ from: 0, to: 3000 })
      expect(total).toMatchObject({
        requests: 2,
        cacheWriteTokens: 40,
        cacheWrite1hTokens: 30,
        promptTokens: 140,
      })
      await c.close()
    })

    it('adds the queue wait to a ledger and queue settings to keys that have rows: old ones read null', async () => {
      const url = await harness.freshUrl()
      const old = openDatabase({ url })
      await migrateTo(old, '0003_ledger_cache_1h')
      await sql`insert into ledger (time, stream, status, outcome, limited, prompt_tokens, cached_tokens,
        cache_write_tokens, completion_tokens, reasoning_tokens, tokens, usd, usd_input, usd_cached,
        usd_cache_write, usd_output, latency_ms)
        values (1000, 0, 200, 'ok', 1, 50, 0, 0, 5, 0, 55, 0.5, 0, 0, 0, 0, 3)`.execute(old.db)
      await old.close()

      const c = await openControl({ url })
      expect(await appliedMigrations(c.database)).toEqual([...MIGRATION_NAMES])
      c.ledger.append({ time: 2000, status: 200, outcome: 'ok', queueMs: 250 })
      await c.ledger.flush()
      const rows = (await c.usage.rows({ from: 0, to: 3000 })).items
      expect(rows.map((r) => r.queueMs)).toEqual([250, null])
      const key = await c.keys.create({ name: 'q', tier: 'service', queue: { maxWait: '2s' } }, ACTOR)
      expect(key.queue).toEqual({ maxWait: 2000 })
      expect((await c.keys.create({ name: 'plain', tier: 'service' }, ACTOR)).queue).toBeNull()
      await c.close()
    })

    it('refuses a database migrated by a newer version, naming the problem', async () => {
      const url = await harness.freshUrl()
      const c = await openControl({ url })
      await sql`insert into sluice_migration (name, timestamp) values ('9999_from_the_future', '2030-01-01T00:00:00Z')`.execute(
        c.database.db,
      )
      await c.close()
      await expect(openControl({ url })).rejects.toThrow(/newer sluice/)
    })

    it('is opened by three processes at once: each succeeds, each migration runs once', async () => {
      const url = await harness.freshUrl()
      const reports = await runWorkerScript<
        { url: string },
        { ok: boolean; version?: string; error?: string }
      >(OPEN_WORKER, [{ url }, { url }, { url }])
      const latest = MIGRATION_NAMES[MIGRATION_NAMES.length - 1]
      expect(reports).toEqual([0, 1, 2].map(() => ({ ok: true, version: latest })))
      const c = await openControl({ url })
      const rows = await sql<{ n: number }>`select count(*) as n from sluice_migration`.execute(c.database.db)
      expect(Number(rows.rows[0]!.n)).toBe(MIGRATION_NAMES.length)
      await c.close()
    })
  })
}
