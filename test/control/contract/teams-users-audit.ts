import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  ConflictError,
  type Control,
  ControlInputError,
  NotFoundError,
  parseKey,
} from '../../../src/control/index.js'
import { ACTOR, type ControlHarness, controls, manualClock } from '../harness.js'

/** Teams, end users, and the audit trail every change leaves. */
export function teamsUsersAuditContract(harness: ControlHarness): void {
  describe(`teams, users and the audit log (${harness.name})`, () => {
    const pool = controls(harness)
    const clock = manualClock()
    let c: Control

    beforeAll(async () => {
      c = await pool.open({ clock: clock.now })
    })
    afterAll(() => pool.closeAll())

    it('creates, reads, lists, updates teams; a duplicate id is a conflict; a bad id names the field', async () => {
      const limits = { budget: { kind: 'fixedWindow', unit: 'usd', limit: 50, window: '1d' } }
      const t = await c.teams.create(
        { id: 'research', name: 'Research', limits, budgets: { usd: { limit: 100, period: 'month' } } },
        ACTOR,
      )
      expect(t).toMatchObject({
        id: 'research',
        name: 'Research',
        limits,
        budgets: { usd: { limit: 100, period: 'month' } },
      })
      expect(await c.teams.get('research')).toEqual(t)
      expect((await c.teams.create({ id: 'ops' }, ACTOR)).name).toBe('ops')
      await expect(c.teams.create({ id: 'research' }, ACTOR)).rejects.toBeInstanceOf(ConflictError)
      for (const id of ['', 'Research', 'has space', '-lead', 'x'.repeat(65), 42]) {
        await expect(c.teams.create({ id } as never, ACTOR)).rejects.toMatchObject({ field: 'id' })
      }
      clock.advance(5000)
      const u = await c.teams.update('research', { name: 'R&D', budgets: null }, ACTOR)
      expect(u).toMatchObject({ name: 'R&D', budgets: null, limits })
      expect(u.updatedAt).not.toBe(u.createdAt)
      await expect(c.teams.update('research', { id: 'other' } as never, ACTOR)).rejects.toMatchObject({
        field: 'id',
      })
      await expect(c.teams.update('nobody', { name: 'x' }, ACTOR)).rejects.toBeInstanceOf(NotFoundError)
      await expect(c.teams.get('nobody')).rejects.toBeInstanceOf(NotFoundError)
      const page = await c.teams.list({ search: 'r&d' })
      expect(page.items.map((x) => x.id)).toEqual(['research'])
      expect((await c.teams.list({ limit: 1 })).items).toHaveLength(1)
    })

    it('refuses to delete a team that owns keys unless forced; forced, its keys are detached and keep working', async () => {
      await c.teams.create({ id: 'doomed' }, ACTOR)
      const a = await c.keys.create({ name: 'a', tier: 'service', team: 'doomed' }, ACTOR)
      const b = await c.keys.create({ name: 'b', tier: 'service', team: 'doomed' }, ACTOR)
      await expect(c.teams.delete('doomed', ACTOR)).rejects.toBeInstanceOf(ConflictError)
      expect((await c.teams.get('doomed')).id).toBe('doomed')
      const seen: unknown[] = []
      const off = c.changes.subscribe((e) => seen.push(e))
      const result = await c.teams.delete('doomed', { ...ACTOR, force: true })
      off()
      expect(result.detachedKeys.sort()).toEqual([a.id, b.id].sort())
      await expect(c.teams.get('doomed')).rejects.toBeInstanceOf(NotFoundError)
      expect((await c.keys.get(a.id)).team).toBeNull()
      expect(await c.keys.verify(a.key)).toBeDefined()
      expect(seen).toEqual(
        expect.arrayContaining([
          { kind: 'key', id: a.id },
          { kind: 'key', id: b.id },
          { kind: 'team', id: 'doomed' },
        ]),
      )
      await c.teams.create({ id: 'empty' }, ACTOR)
      expect(await c.teams.delete('empty', ACTOR)).toEqual({ detachedKeys: [] })
      await expect(c.teams.delete('empty', ACTOR)).rejects.toBeInstanceOf(NotFoundError)
    })

    it('keeps per-user overrides: set creates or merges, null clears, delete removes', async () => {
      const user = 'alice@example.com'
      const first = await c.users.set(user, { budgets: { tokens: { limit: 1000, period: 'week' } } }, ACTOR)
      expect(first).toMatchObject({
        id: user,
        budgets: { tokens: { limit: 1000, period: 'week' } },
        limits: null,
      })
      const second = await c.users.set(user, { metadata: { plan: 'pro' } }, ACTOR)
      expect(second).toMatchObject({
        budgets: { tokens: { limit: 1000, period: 'week' } },
        metadata: { plan: 'pro' },
      })
      expect(await c.users.get(user)).toEqual(second)
      expect((await c.users.list({ search: 'ALICE' })).items.map((x) => x.id)).toEqual([user])
      await expect(
        c.users.set(user, { budgets: { tokens: { limit: 1.5, period: 'day' } } }, ACTOR),
      ).rejects.toMatchObject({
        field: 'budgets.tokens.limit',
      })
      await expect(c.users.set('', {}, ACTOR)).rejects.toBeInstanceOf(ControlInputError)
      await c.users.delete(user, ACTOR)
      await expect(c.users.get(user)).rejects.toBeInstanceOf(NotFoundError)
      await expect(c.users.delete(user, ACTOR)).rejects.toBeInstanceOf(NotFoundError)
    })

    it('audits every change: who, what, before → after, when — and never a secret', async () => {
      const start = clock.now()
      const actor = { actor: 'admin-api:ops' }
      const k = await c.keys.create({ name: 'audited', tier: 'service' }, actor)
      clock.advance(1000)
      await c.keys.update(k.id, { name: 'audited-2' }, actor)
      clock.advance(1000)
      const rotated = await c.keys.rotate(k.id, { ...actor, graceMs: 60_000 })
      clock.advance(1000)
      await c.keys.revoke(k.id, { actor: 'cli:bob' })

      const page = await c.audit.list({ targetKind: 'key', targetId: k.id })
      expect(page.items.map((e) => [e.action, e.actor])).toEqual([
        ['key.revoke', 'cli:bob'],
        ['key.rotate', 'admin-api:ops'],
        ['key.update', 'admin-api:ops'],
        ['key.create', 'admin-api:ops'],
      ])
      const [revoke, , update, create] = page.items
      expect(create!.before).toBeNull()
      expect(create!.after).toMatchObject({ id: k.id, name: 'audited' })
      expect(update!.before).toMatchObject({ name: 'audited' })
      expect(update!.after).toMatchObject({ name: 'audited-2' })
      expect(revoke!.after).toMatchObject({ status: 'revoked' })
      expect(create!.time).toBe(new Date(start).toISOString())
      const text = JSON.stringify(page)
      for (const key of [k.key, rotated.key]) expect(text).not.toContain(parseKey(key)!.secret)
      expect(text).not.toMatch(/hash/i)

      expect((await c.audit.list({ actor: 'cli:bob' })).items.map((e) => e.action)).toEqual(['key.revoke'])
      const since = await c.audit.list({ from: start + 1500, targetId: k.id })
      expect(since.items.map((e) => e.action)).toEqual(['key.revoke', 'key.rotate'])
    })

    it('pages the audit log with a cursor, newest first, without gaps or repeats', async () => {
      for (let i = 0; i < 12; i++) await c.users.set(`pager-${i}`, { metadata: { i } }, { actor: 'pager' })
      const ids: string[] = []
      let cursor: string | undefined
      let pages = 0
      do {
        const page = await c.audit.list({ actor: 'pager', limit: 5, cursor })
        ids.push(...page.items.map((e) => e.targetId))
        cursor = page.next
        pages++
      } while (cursor !== undefined)
      expect(pages).toBe(3)
      expect(ids).toEqual(Array.from({ length: 12 }, (_, i) => `pager-${11 - i}`))
      await expect(c.audit.list({ cursor: 'not-a-cursor!' })).rejects.toMatchObject({ field: 'cursor' })
    })
  })
}
