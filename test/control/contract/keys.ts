import { createHash } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  ConflictError,
  type Control,
  ControlInputError,
  NotFoundError,
  parseKey,
} from '../../../src/control/index.js'
import { ACTOR, type ControlHarness, controls, manualClock } from '../harness.js'

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex')
const HOUR = 3_600_000

/** Keys: issue, read, change, revoke, rotate, expire, and check presented keys. */
export function keysContract(harness: ControlHarness): void {
  describe(`keys (${harness.name})`, () => {
    const pool = controls(harness)
    const clock = manualClock()
    let c: Control

    beforeAll(async () => {
      c = await pool.open({ clock: clock.now })
    })
    afterAll(() => pool.closeAll())

    it('issues sk-sluice-<id>-<secret> once, stores only the SHA-256 of the secret, and never shows either again', async () => {
      const issued = await c.keys.create(
        { name: 'ci-bot', tier: 'service', metadata: { owner: 'ops' } },
        ACTOR,
      )
      const parsed = parseKey(issued.key)!
      expect(parsed.id).toBe(issued.id)
      expect(issued.id).toMatch(/^[a-z2-7]{10}$/)
      expect(parsed.secret.length).toBeGreaterThanOrEqual(32)
      expect(issued).toMatchObject({
        name: 'ci-bot',
        tier: 'service',
        status: 'active',
        team: null,
        metadata: { owner: 'ops' },
      })

      const row = await c.database.db
        .selectFrom('keys')
        .selectAll()
        .where('id', '=', issued.id)
        .executeTakeFirstOrThrow()
      expect(row.secret_hash).toBe(sha256(parsed.secret))
      expect(JSON.stringify(row)).not.toContain(parsed.secret)

      const shown = JSON.stringify([
        await c.keys.get(issued.id),
        await c.keys.list({ search: 'ci-bot' }),
        await c.audit.list({ targetId: issued.id }),
      ])
      expect(shown).not.toContain(parsed.secret)
      expect(shown).not.toContain(row.secret_hash)
      expect(shown).not.toContain('sk-sluice-')
    })

    it('verifies the key, and nothing else: wrong secrets, other ids and malformed strings are undefined', async () => {
      const a = await c.keys.create({ name: 'a', tier: 'service' }, ACTOR)
      const b = await c.keys.create({ name: 'b', tier: 'service' }, ACTOR)
      expect((await c.keys.verify(a.key))?.id).toBe(a.id)
      const secretOfB = parseKey(b.key)!.secret
      const bad = [
        `sk-sluice-${a.id}-${secretOfB}`, // another key's secret under this id
        `${a.key.slice(0, -1)}${a.key.endsWith('A') ? 'B' : 'A'}`, // one character off
        a.key.slice(0, -12), // too short a secret
        a.key.toUpperCase(),
        `sk-sluice-aaaaaaaaaa-${parseKey(a.key)!.secret}`, // unknown id
        '',
        'sk-sluice-',
        `sk-sluice-${a.id}`,
        `sk-sluice-${a.id}-`,
        `${a.key} `,
        `Bearer ${a.key}`,
        `sk-sluice-${a.id}-${'x'.repeat(10_000)}`,
        `sk-sluice-${a.id}-${parseKey(a.key)!.secret.slice(0, 30)}%00`,
        'sk-sluice-../../etc-passwdpasswdpasswdpasswdpasswdpasswd',
      ]
      for (const key of bad) expect(await c.keys.verify(key), key.slice(0, 40)).toBeUndefined()
      expect(await c.keys.verify(42 as unknown as string)).toBeUndefined()
    })

    it('updates fields, naming the bad one, and refuses unknown teams, fields and ids', async () => {
      const k = await c.keys.create({ name: 'upd', tier: 'service' }, ACTOR)
      await c.teams.create({ id: 'upd-team' }, ACTOR)
      const limits = { hourly: { kind: 'slidingWindow', limit: 50, window: '1h' }, burst: null }
      const updated = await c.keys.update(
        k.id,
        {
          name: 'renamed',
          tier: 'premium',
          team: 'upd-team',
          user: 'alice',
          limits,
          budgets: { usd: { limit: 5, period: 'day' }, tokens: { limit: 100_000, period: 'month' } },
          expiresAt: '2027-01-01T00:00:00Z',
          metadata: { ticket: 42 },
        },
        ACTOR,
      )
      expect(updated).toMatchObject({
        name: 'renamed',
        tier: 'premium',
        team: 'upd-team',
        user: 'alice',
        limits,
        budgets: { usd: { limit: 5, period: 'day' }, tokens: { limit: 100_000, period: 'month' } },
        expiresAt: '2027-01-01T00:00:00.000Z',
        metadata: { ticket: 42 },
      })
      expect(await c.keys.get(k.id)).toEqual(updated)
      const cleared = await c.keys.update(
        k.id,
        { team: null, user: null, budgets: null, expiresAt: null },
        ACTOR,
      )
      expect(cleared).toMatchObject({
        team: null,
        user: null,
        budgets: null,
        expiresAt: null,
        name: 'renamed',
      })

      const field = async (work: Promise<unknown>) => {
        const error = await work.then(
          () => undefined,
          (e: unknown) => e,
        )
        expect(error).toBeInstanceOf(ControlInputError)
        return (error as ControlInputError).field
      }
      expect(await field(c.keys.update(k.id, { team: 'no-such-team' }, ACTOR))).toBe('team')
      expect(
        await field(c.keys.update(k.id, { budgets: { usd: { limit: 5, period: 'year' } } }, ACTOR)),
      ).toBe('budgets.usd.period')
      expect(
        await field(c.keys.update(k.id, { budgets: { usd: { limit: -1, period: 'day' } } }, ACTOR)),
      ).toBe('budgets.usd.limit')
      expect(await field(c.keys.update(k.id, { budgets: { eur: { limit: 1, period: 'day' } } }, ACTOR))).toBe(
        'budgets.eur',
      )
      expect(await field(c.keys.update(k.id, { limits: { hourly: { limit: 5 } } }, ACTOR))).toBe(
        'limits.hourly',
      )
      expect(await field(c.keys.update(k.id, { limits: [] }, ACTOR))).toBe('limits')
      expect(await field(c.keys.update(k.id, { name: '' }, ACTOR))).toBe('name')
      expect(await field(c.keys.update(k.id, { expiresAt: 'tomorrow' }, ACTOR))).toBe('expiresAt')
      expect(await field(c.keys.update(k.id, { metadata: { f: () => 1 } as never }, ACTOR))).toBe(
        'metadata.f',
      )
      expect(await field(c.keys.update(k.id, { secret: 'x' } as never, ACTOR))).toBe('secret')
      expect(await field(c.keys.create({ name: 'x' } as never, ACTOR))).toBe('tier')
      expect(await field(c.keys.create({ name: 'x', tier: 'service' }, { actor: '' }))).toBe('actor')
      await expect(c.keys.update('zzzzzzzzzz', { name: 'x' }, ACTOR)).rejects.toBeInstanceOf(NotFoundError)
      await expect(c.keys.get('not a key id')).rejects.toBeInstanceOf(NotFoundError)
      await expect(c.keys.revoke('aaaaaaaaaa', ACTOR)).rejects.toBeInstanceOf(NotFoundError)
      // Nothing was half-applied by the refused updates.
      expect(await c.keys.get(k.id)).toMatchObject({ name: 'renamed', tier: 'premium', team: null })
    })

    it('passes tiers and limits through the validation hooks', async () => {
      const strict = await pool.open({
        clock: clock.now,
        validation: {
          tier: (tier, field) => {
            if (!['service', 'premium'].includes(tier))
              throw new ControlInputError(field, 'names no configured tier', tier)
          },
          limits: (limits, field) => {
            for (const [name, l] of Object.entries(limits)) {
              if (l !== null && l.kind !== 'slidingWindow')
                throw new ControlInputError(`${field}.${name}.kind`, 'is not allowed')
            }
          },
        },
      })
      await expect(strict.keys.create({ name: 'x', tier: 'gold' }, ACTOR)).rejects.toMatchObject({
        field: 'tier',
      })
      await expect(
        strict.keys.create({ name: 'x', tier: 'service', limits: { a: { kind: 'tokenBucket' } } }, ACTOR),
      ).rejects.toMatchObject({ field: 'limits.a.kind' })
      expect((await strict.keys.create({ name: 'x', tier: 'premium' }, ACTOR)).tier).toBe('premium')
    })

    it('revokes at once; revoking again changes nothing; a revoked key cannot be rotated', async () => {
      const k = await c.keys.create({ name: 'rev', tier: 'service' }, ACTOR)
      const revoked = await c.keys.revoke(k.id, ACTOR)
      expect(revoked.status).toBe('revoked')
      expect(revoked.revokedAt).toBe(new Date(clock.now()).toISOString())
      expect(await c.keys.verify(k.key)).toBeUndefined()
      clock.advance(1000)
      expect((await c.keys.revoke(k.id, ACTOR)).revokedAt).toBe(revoked.revokedAt)
      const audit = await c.audit.list({ targetId: k.id, action: 'key.revoke' })
      expect(audit.items).toHaveLength(1)
      await expect(c.keys.rotate(k.id, { ...ACTOR, graceMs: 0 })).rejects.toBeInstanceOf(ConflictError)
    })

    it('rotates with a grace period: both secrets work until it ends, then only the new one', async () => {
      const k = await c.keys.create({ name: 'rot', tier: 'service' }, ACTOR)
      const r1 = await c.keys.rotate(k.id, { ...ACTOR, graceMs: HOUR })
      expect(r1.id).toBe(k.id)
      expect(r1.key).not.toBe(k.key)
      expect(r1.previousSecretValidUntil).toBe(new Date(clock.now() + HOUR).toISOString())
      expect((await c.keys.verify(k.key))?.id).toBe(k.id)
      expect((await c.keys.verify(r1.key))?.id).toBe(k.id)
      clock.advance(HOUR - 1)
      expect(await c.keys.verify(k.key)).toBeDefined()
      clock.advance(1)
      expect(await c.keys.verify(k.key)).toBeUndefined()
      expect(await c.keys.verify(r1.key)).toBeDefined()
      expect((await c.keys.get(k.id)).previousSecretValidUntil).toBeNull()

      // A second rotation during a grace ends the first grace: one previous secret at most.
      const r2 = await c.keys.rotate(k.id, { ...ACTOR, graceMs: HOUR })
      const r3 = await c.keys.rotate(k.id, { ...ACTOR, graceMs: HOUR })
      expect(await c.keys.verify(r1.key)).toBeUndefined()
      expect(await c.keys.verify(r2.key)).toBeDefined()
      expect(await c.keys.verify(r3.key)).toBeDefined()
      // No grace: the old secret stops at once.
      const r4 = await c.keys.rotate(k.id, ACTOR)
      expect(await c.keys.verify(r3.key)).toBeUndefined()
      expect(await c.keys.verify(r4.key)).toBeDefined()
      await expect(c.keys.rotate(k.id, { ...ACTOR, graceMs: -1 })).rejects.toMatchObject({ field: 'graceMs' })
      await expect(c.keys.rotate(k.id, { ...ACTOR, graceMs: 31 * 86_400_000 })).rejects.toMatchObject({
        field: 'graceMs',
      })
      // Rotation records carry no secret.
      const audit = JSON.stringify(await c.audit.list({ targetId: k.id }))
      for (const key of [k.key, r1.key, r2.key, r3.key, r4.key])
        expect(audit).not.toContain(parseKey(key)!.secret)
    })

    it('expires: works until expiresAt, then is refused and listed as expired', async () => {
      const k = await c.keys.create({ name: 'exp', tier: 'service', expiresAt: clock.now() + HOUR }, ACTOR)
      expect((await c.keys.get(k.id)).status).toBe('active')
      expect(await c.keys.verify(k.key)).toBeDefined()
      clock.advance(HOUR)
      expect(await c.keys.verify(k.key)).toBeUndefined()
      expect((await c.keys.get(k.id)).status).toBe('expired')
      const expired = await c.keys.list({ status: 'expired', search: 'exp', limit: 1000 })
      expect(expired.items.map((i) => i.id)).toContain(k.id)
      const active = await c.keys.list({ status: 'active', limit: 1000 })
      expect(active.items.map((i) => i.id)).not.toContain(k.id)
      // Expiry can be lifted: the key works again.
      await c.keys.update(k.id, { expiresAt: null }, ACTOR)
      expect(await c.keys.verify(k.key)).toBeDefined()
    })

    it('lists with filters, search, sort and pages', async () => {
      await c.teams.create({ id: 'list-team' }, ACTOR)
      const made = []
      for (let i = 0; i < 7; i++) {
        clock.advance(1000)
        made.push(
          await c.keys.create(
            {
              name: `list-${i}${i === 3 ? '%' : ''}`,
              tier: i % 2 ? 'premium' : 'service',
              team: 'list-team',
            },
            ACTOR,
          ),
        )
      }
      await c.keys.revoke(made[6]!.id, ACTOR)
      const all = await c.keys.list({ team: 'list-team' })
      expect(all.total).toBe(7)
      expect(all.items.map((k) => k.id)).toEqual(made.map((k) => k.id).reverse()) // newest first
      expect((await c.keys.list({ team: 'list-team', tier: 'premium' })).total).toBe(3)
      expect((await c.keys.list({ team: 'list-team', status: 'revoked' })).items.map((k) => k.id)).toEqual([
        made[6]!.id,
      ])
      expect((await c.keys.list({ team: 'list-team', status: 'active' })).total).toBe(6)
      // LIKE wildcards in the search match literally; case does not matter.
      expect((await c.keys.list({ search: '%' })).items.map((k) => k.name)).toEqual(['list-3%'])
      expect((await c.keys.list({ search: 'LIST-5' })).items.map((k) => k.name)).toEqual(['list-5'])
      expect((await c.keys.list({ search: made[2]!.id })).items.map((k) => k.id)).toEqual([made[2]!.id])
      const byName = await c.keys.list({ team: 'list-team', sort: 'name', order: 'asc', limit: 3, offset: 3 })
      expect(byName.total).toBe(7)
      expect(byName.items.map((k) => k.name)).toEqual(['list-3%', 'list-4', 'list-5'])
      await expect(c.keys.list({ limit: 0 })).rejects.toMatchObject({ field: 'limit' })
      await expect(c.keys.list({ status: 'gone' as never })).rejects.toMatchObject({ field: 'status' })
      await expect(c.keys.list({ sort: 'secret' as never })).rejects.toMatchObject({ field: 'sort' })
    })

    it('serialises concurrent changes to one key: each audit entry starts where the previous one ended', async () => {
      const other = await pool.open({ clock: clock.now })
      const k = await c.keys.create({ name: 'contended', tier: 'service', metadata: { n: -1 } }, ACTOR)
      await Promise.all(
        Array.from({ length: 24 }, (_, n) =>
          (n % 2 ? c : other).keys.update(k.id, { metadata: { n } }, ACTOR),
        ),
      )
      const updates = (await c.audit.list({ targetId: k.id, action: 'key.update' })).items.reverse()
      expect(updates).toHaveLength(24)
      let previous: unknown = { n: -1 }
      for (const entry of updates) {
        expect((entry.before as { metadata: unknown }).metadata).toEqual(previous)
        previous = (entry.after as { metadata: unknown }).metadata
      }
      expect((await c.keys.get(k.id)).metadata).toEqual(previous)
    })

    it('records last use in batches, never moving it backwards', async () => {
      const k = await c.keys.create({ name: 'used', tier: 'service' }, ACTOR)
      const cache = c.createKeyCache()
      expect((await cache.lookup(k.key))?.id).toBe(k.id)
      expect((await c.keys.get(k.id)).lastUsedAt).toBeNull() // not per request
      await c.lastUsed.flush()
      const used = new Date(clock.now()).toISOString()
      expect((await c.keys.get(k.id)).lastUsedAt).toBe(used)
      c.lastUsed.touch(k.id, clock.now() - 60_000)
      await c.lastUsed.flush()
      expect((await c.keys.get(k.id)).lastUsedAt).toBe(used)
      cache.close()
    })
  })
}
