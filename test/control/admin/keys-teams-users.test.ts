import { createHash } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Control, openControl, parseKey } from '../../../src/control/index.js'
import { type AdminFixture, type Answer, DATABASES, documentValidator, startAdmin } from './harness.js'

/** One error shape everywhere: status, and the field at fault when there is one. */
function expectErrorShape(answer: Answer, status: number, param?: string) {
  expect(answer.status, answer.text).toBe(status)
  expect(answer.headers.get('content-type')).toMatch(/^application\/json/)
  expect(Object.keys(answer.json)).toEqual(['error'])
  expect(Object.keys(answer.json.error).sort()).toEqual(['code', 'message', 'param', 'type'])
  expect(typeof answer.json.error.message).toBe('string')
  if (param !== undefined) {
    expect(answer.json.error.param).toBe(param)
    expect(answer.json.error.message).toContain(param)
  }
}

describe.each(DATABASES)('admin API: keys, teams, users on %s', (_name, makeHarness) => {
  const harness = makeHarness()
  let control: Control
  let admin: AdminFixture
  let check: ReturnType<typeof documentValidator>
  /** Every answer of this suite, to search them all for secrets at the end. */
  const seen: { method: string; path: string; status: number; text: string }[] = []
  const call: AdminFixture['call'] = async (method, path, options) => {
    const answer = await admin.call(method, path, options)
    seen.push({ method, path, status: answer.status, text: answer.text })
    return answer
  }
  const valid = (component: string, answer: Answer) => {
    expect(check.errors(component, answer.json), `${component}: ${answer.text}`).toBeUndefined()
  }
  /** The error shape, checked by hand and against the document's Error schema. */
  const expectError = (answer: Answer, status: number, param?: string) => {
    expectErrorShape(answer, status, param)
    valid('Error', answer)
  }

  beforeAll(async () => {
    await harness.setup()
    control = await openControl({ url: harness.url() })
    admin = await startAdmin(control)
    check = documentValidator((await admin.call('GET', '/admin/v1/openapi.json')).json)
  })
  afterAll(async () => {
    await admin?.close()
    await control?.close()
    await harness.teardown()
  })

  it('creates a team, then a key with a budget in it: 201 with the whole key, shown only there', async () => {
    const team = await call('POST', '/admin/v1/teams', {
      body: { id: 'research', name: 'Research', budgets: { usd: { limit: 500, period: 'month' } } },
    })
    expect(team.status).toBe(201)
    valid('Team', team)
    expect(team.json).toMatchObject({ id: 'research', name: 'Research' })

    const created = await call('POST', '/admin/v1/keys', {
      body: {
        name: 'ci-bot',
        tier: 'service',
        team: 'research',
        budgets: { usd: { limit: 50, period: 'day' } },
      },
    })
    expect(created.status).toBe(201)
    valid('IssuedKey', created)
    expect(created.json).toMatchObject({
      name: 'ci-bot',
      tier: 'service',
      team: 'research',
      status: 'active',
      budgets: { usd: { limit: 50, period: 'day' } },
    })
    expect(created.json.key).toMatch(/^sk-sluice-[a-z2-7]{10}-[A-Za-z0-9_-]{43}$/)
    expect(parseKey(created.json.key)?.id).toBe(created.json.id)
    // The key works at once for the data layer the gateway reads.
    expect((await control.keys.verify(created.json.key))?.id).toBe(created.json.id)

    const shown = await call('GET', `/admin/v1/keys/${created.json.id}`)
    expect(shown.status).toBe(200)
    valid('Key', shown)
    expect(shown.json).not.toHaveProperty('key')
    expect(shown.json.id).toBe(created.json.id)
  })

  it('stores limit overrides as written, checked with the config schema', async () => {
    const limits = {
      tokens: { kind: 'tokenBucket', unit: 'tokens', capacity: 20000, per: '1h' },
      burst: null,
    }
    const created = await call('POST', '/admin/v1/keys', {
      body: { name: 'limited', tier: 'premium', limits },
    })
    expect(created.status).toBe(201)
    expect(created.json.limits).toEqual(limits)
    expect((await call('GET', `/admin/v1/keys/${created.json.id}`)).json.limits).toEqual(limits)

    const bad = await call('PATCH', `/admin/v1/keys/${created.json.id}`, {
      body: { limits: { minute: { kind: 'slidingWindow', limit: 10, window: 'soon' } } },
    })
    expectError(bad, 400, 'limits.minute.window')
    const unknownKind = await call('PATCH', `/admin/v1/keys/${created.json.id}`, {
      body: { limits: { minute: { kind: 'leakyBucket', limit: 10 } } },
    })
    expectError(unknownKind, 400, 'limits.minute.kind')
    const extraField = await call('PATCH', `/admin/v1/keys/${created.json.id}`, {
      body: { limits: { minute: { kind: 'fixedWindow', limit: 10, window: '1m', burst: 3 } } },
    })
    expectError(extraField, 400, 'limits.minute.burst')
  })

  it('answers 400 naming the field for every kind of bad input', async () => {
    const post = (body: unknown) => call('POST', '/admin/v1/keys', { body })
    expectError(await post({ name: 'x', tier: 'gold' }), 400, 'tier')
    expectError(
      await post({ name: 'x', tier: 'service', budgets: { usd: { limit: -5, period: 'day' } } }),
      400,
      'budgets.usd.limit',
    )
    expectError(
      await post({ name: 'x', tier: 'service', budgets: { usd: { limit: 5, period: 'year' } } }),
      400,
      'budgets.usd.period',
    )
    expectError(
      await post({ name: 'x', tier: 'service', budgets: { tokens: { limit: 1.5, period: 'day' } } }),
      400,
      'budgets.tokens.limit',
    )
    expectError(
      await post({ name: 'x', tier: 'service', budgets: { eur: { limit: 5, period: 'day' } } }),
      400,
      'budgets.eur',
    )
    expectError(await post({ tier: 'service' }), 400, 'name')
    expectError(await post({ name: '', tier: 'service' }), 400, 'name')
    expectError(await post({ name: 'a\u0000b', tier: 'service' }), 400, 'name')
    expectError(await post({ name: 'x', tier: 'service', colour: 'red' }), 400, 'colour')
    expectError(await post({ name: 'x', tier: 'service', team: 'Not A Slug' }), 400, 'team')
    expectError(await post({ name: 'x', tier: 'service', team: 'nobody' }), 400, 'team')
    expectError(await post({ name: 'x', tier: 'service', expiresAt: 'tomorrow' }), 400, 'expiresAt')
    expectError(await post({ name: 'x', tier: 'service', metadata: [1, 2] }), 400, 'metadata')
    expectError(await post([1]), 400, 'body')
    expectError(await call('POST', '/admin/v1/keys'), 400, 'body')
    const badJson = await call('POST', '/admin/v1/keys', {
      rawBody: '{"name":',
      headers: { 'content-type': 'application/json' },
    })
    expectError(badJson, 400)
    expect(badJson.json.error.code).toBe('invalid_json')
    // Query strings too.
    expectError(await call('GET', '/admin/v1/keys?limit=0'), 400, 'limit')
    expectError(await call('GET', '/admin/v1/keys?limit=abc'), 400, 'limit')
    expectError(await call('GET', '/admin/v1/keys?sort=colour'), 400, 'sort')
    expectError(await call('GET', '/admin/v1/keys?status=sleeping'), 400, 'status')
    expectError(await call('GET', '/admin/v1/keys?owner=me'), 400, 'owner')
    expectError(await call('GET', '/admin/v1/keys?tier=a&tier=b'), 400, 'tier')
  })

  it('refuses __proto__ as a name anywhere, and survives a body nested thousands deep', async () => {
    const raw = (json: string) =>
      call('POST', '/admin/v1/keys', { rawBody: json, headers: { 'content-type': 'application/json' } })
    // Limit overrides are stored as written: a "__proto__" limit would reach code that merges by name.
    expectError(
      await raw(
        '{"name":"x","tier":"service","limits":{"__proto__":{"kind":"fixedWindow","limit":1,"window":"1m"}}}',
      ),
      400,
      'limits.__proto__',
    )
    // zod alone would drop this key without a word.
    expectError(
      await raw('{"name":"x","tier":"service","metadata":{"ok":1,"__proto__":{"admin":true}}}'),
      400,
      'metadata.__proto__',
    )
    expectError(await raw('{"name":"x","tier":"service","__proto__":{"tier":"premium"}}'), 400, '__proto__')
    const deep = `{"name":"x","tier":"service","metadata":{"a":${'['.repeat(20_000)}${']'.repeat(20_000)}}}`
    expectError(await raw(deep), 400)
    expect(({} as Record<string, unknown>).admin).toBeUndefined()
  })

  it('lists keys with search, filters, sort and pages', async () => {
    for (const name of ['batch-a', 'batch-b', 'batch-c', 'other']) {
      expect(
        (await call('POST', '/admin/v1/keys', { body: { name, tier: 'service', team: 'research' } })).status,
      ).toBe(201)
    }
    const all = await call('GET', '/admin/v1/keys?team=research&sort=name&order=asc&limit=100')
    expect(all.status).toBe(200)
    valid('KeyPage', all)
    const names = all.json.items.map((k: { name: string }) => k.name)
    expect(names).toEqual([...names].sort())
    expect(all.json.total).toBe(names.length)

    const search = await call('GET', '/admin/v1/keys?search=BATCH&sort=name&order=asc')
    expect(search.json.items.map((k: { name: string }) => k.name)).toEqual(['batch-a', 'batch-b', 'batch-c'])

    const page1 = await call('GET', '/admin/v1/keys?search=batch&sort=name&order=asc&limit=2')
    const page2 = await call('GET', '/admin/v1/keys?search=batch&sort=name&order=asc&limit=2&offset=2')
    expect(page1.json).toMatchObject({ total: 3, limit: 2, offset: 0 })
    expect(page1.json.items.map((k: { name: string }) => k.name)).toEqual(['batch-a', 'batch-b'])
    expect(page2.json.items.map((k: { name: string }) => k.name)).toEqual(['batch-c'])

    const premium = await call('GET', '/admin/v1/keys?tier=premium')
    expect(premium.json.items.every((k: { tier: string }) => k.tier === 'premium')).toBe(true)
    expect(premium.json.total).toBeGreaterThan(0)
  })

  it('updates a key: tier, budgets cleared with null, expiry', async () => {
    const created = await call('POST', '/admin/v1/keys', {
      body: { name: 'to-edit', tier: 'service', budgets: { usd: { limit: 5, period: 'week' } } },
    })
    const id = created.json.id
    const edited = await call('PATCH', `/admin/v1/keys/${id}`, {
      body: { tier: 'premium', budgets: null, expiresAt: '2099-01-01T00:00:00Z', metadata: { owner: 'ops' } },
    })
    expect(edited.status).toBe(200)
    valid('Key', edited)
    expect(edited.json).toMatchObject({
      tier: 'premium',
      budgets: null,
      expiresAt: '2099-01-01T00:00:00.000Z',
      metadata: { owner: 'ops' },
    })
    const expired = await call('PATCH', `/admin/v1/keys/${id}`, { body: { expiresAt: 1_000 } })
    expect(expired.json.status).toBe('expired')
    const filtered = await call('GET', '/admin/v1/keys?status=expired')
    expect(filtered.json.items.map((k: { id: string }) => k.id)).toContain(id)
    expectError(await call('PATCH', `/admin/v1/keys/${id}`, { body: { tier: 'gold' } }), 400, 'tier')
    expectError(await call('PATCH', `/admin/v1/keys/${id}`, { body: { secret: 'x' } }), 400, 'secret')
  })

  it('rotates with a grace (both secrets work), then revokes; a revoked key cannot be rotated (409)', async () => {
    const created = await call('POST', '/admin/v1/keys', { body: { name: 'rotating', tier: 'service' } })
    const id = created.json.id
    const rotated = await call('POST', `/admin/v1/keys/${id}/rotate`, { body: { grace: '1h' } })
    expect(rotated.status).toBe(200)
    valid('IssuedKey', rotated)
    expect(rotated.json.key).not.toBe(created.json.key)
    expect(rotated.json.previousSecretValidUntil).not.toBeNull()
    expect((await control.keys.verify(created.json.key))?.id).toBe(id)
    expect((await control.keys.verify(rotated.json.key))?.id).toBe(id)

    const again = await call('POST', `/admin/v1/keys/${id}/rotate`) // no body: no grace
    expect(again.status).toBe(200)
    expect(await control.keys.verify(rotated.json.key)).toBeUndefined()
    expect((await control.keys.verify(again.json.key))?.id).toBe(id)
    expectError(await call('POST', `/admin/v1/keys/${id}/rotate`, { body: { grace: '99d' } }), 400, 'grace')

    const revoked = await call('POST', `/admin/v1/keys/${id}/revoke`)
    expect(revoked.status).toBe(200)
    valid('Key', revoked)
    expect(revoked.json.status).toBe('revoked')
    expect(await control.keys.verify(again.json.key)).toBeUndefined()
    expect((await call('POST', `/admin/v1/keys/${id}/revoke`)).json.revokedAt).toBe(revoked.json.revokedAt)
    expectError(await call('POST', `/admin/v1/keys/${id}/rotate`), 409)
  })

  it('answers 404 for unknown or malformed ids, 405 for a known path with another method', async () => {
    expectError(await call('GET', '/admin/v1/keys/aaaaaaaaaa'), 404)
    expectError(await call('GET', '/admin/v1/keys/not-an-id'), 404)
    expectError(await call('PATCH', '/admin/v1/keys/aaaaaaaaaa', { body: { name: 'x' } }), 404)
    expectError(await call('POST', '/admin/v1/keys/aaaaaaaaaa/revoke'), 404)
    expectError(await call('POST', '/admin/v1/keys/aaaaaaaaaa/rotate'), 404)
    expectError(await call('GET', '/admin/v1/teams/nobody'), 404)
    expectError(await call('GET', '/admin/v1/users/nobody'), 404)
    expectError(await call('GET', '/admin/v1/nothing-here'), 404)
    const wrongMethod = await call('DELETE', '/admin/v1/keys/aaaaaaaaaa')
    expectError(wrongMethod, 405)
    expect(wrongMethod.headers.get('allow')).toBe('GET, PATCH, HEAD')
  })

  it('teams: list, show, change, and delete (409 while keys belong to it, unless forced)', async () => {
    expectError(await call('POST', '/admin/v1/teams', { body: { id: 'research' } }), 409)
    expectError(await call('POST', '/admin/v1/teams', { body: { id: 'Bad Id' } }), 400, 'id')
    expect((await call('POST', '/admin/v1/teams', { body: { id: 'ops' } })).status).toBe(201)
    const list = await call('GET', '/admin/v1/teams?search=o')
    valid('TeamPage', list)
    expect(list.json.items.map((t: { id: string }) => t.id).sort()).toEqual(['ops'])
    const changed = await call('PATCH', '/admin/v1/teams/ops', {
      body: { name: 'Operations', limits: { hourly: { kind: 'slidingWindow', limit: 100, window: '1h' } } },
    })
    valid('Team', changed)
    expect(changed.json).toMatchObject({ name: 'Operations', limits: { hourly: { window: '1h' } } })
    expectError(
      await call('PATCH', '/admin/v1/teams/ops', { body: { budgets: { usd: { limit: 0, period: 'day' } } } }),
      400,
      'budgets.usd.limit',
    )
    const shown = await call('GET', '/admin/v1/teams/ops')
    expect(shown.json.name).toBe('Operations')

    expectError(await call('DELETE', '/admin/v1/teams/research'), 409)
    expectError(await call('DELETE', '/admin/v1/teams/research?force=maybe'), 400, 'force')
    const owned = await call('GET', '/admin/v1/keys?team=research&limit=1000')
    const forced = await call('DELETE', '/admin/v1/teams/research?force=true')
    expect(forced.status).toBe(200)
    valid('TeamDeleted', forced)
    expect([...forced.json.detachedKeys].sort()).toEqual(
      owned.json.items.map((k: { id: string }) => k.id).sort(),
    )
    expectError(await call('GET', '/admin/v1/teams/research'), 404)
    const deleted = await call('DELETE', '/admin/v1/teams/ops?force=false')
    expect(deleted.json).toEqual({ id: 'ops', deleted: true, detachedKeys: [] })
  })

  it('end users: set (create or change), show, list, delete; ids with "/" and spaces travel URL-encoded', async () => {
    const id = 'org/alice smith'
    const path = `/admin/v1/users/${encodeURIComponent(id)}`
    const set = await call('PUT', path, { body: { budgets: { usd: { limit: 5, period: 'day' } } } })
    expect(set.status).toBe(200)
    valid('User', set)
    expect(set.json).toMatchObject({ id, budgets: { usd: { limit: 5, period: 'day' } }, limits: null })
    const changed = await call('PUT', path, { body: { metadata: { plan: 'pro' } } })
    expect(changed.json).toMatchObject({ budgets: { usd: { limit: 5 } }, metadata: { plan: 'pro' } })
    expect((await call('GET', path)).json.id).toBe(id)
    const list = await call('GET', '/admin/v1/users?search=ALICE')
    valid('UserPage', list)
    expect(list.json.items.map((u: { id: string }) => u.id)).toEqual([id])
    expectError(await call('PUT', path, { body: { tier: 'premium' } }), 400, 'tier')
    const deleted = await call('DELETE', path)
    valid('UserDeleted', deleted)
    expectError(await call('GET', path), 404)
    expectError(await call('DELETE', path), 404)
  })

  it('records the actor of every change: x-sluice-actor, or "admin"; a malformed one is a 400', async () => {
    const created = await call('POST', '/admin/v1/keys', {
      body: { name: 'audited', tier: 'service' },
      headers: { 'x-sluice-actor': 'alice@ops' },
    })
    await call('POST', `/admin/v1/keys/${created.json.id}/revoke`)
    const log = await call('GET', `/admin/v1/audit?targetKind=key&targetId=${created.json.id}`)
    valid('AuditPage', log)
    expect(log.json.items.map((e: { action: string; actor: string }) => [e.action, e.actor])).toEqual([
      ['key.revoke', 'admin-api:admin'],
      ['key.create', 'admin-api:alice@ops'],
    ])
    const forged = await call('POST', '/admin/v1/keys', {
      body: { name: 'x', tier: 'service' },
      headers: { 'x-sluice-actor': 'cli:root' },
    })
    expectError(forged, 400, 'x-sluice-actor')
  })

  it('never shows a secret or its hash, in any answer but the one that issued it', async () => {
    const created = await call('POST', '/admin/v1/keys', { body: { name: 'secretive', tier: 'service' } })
    const rotated = await call('POST', `/admin/v1/keys/${created.json.id}/rotate`, {
      body: { grace: 60_000 },
    })
    // Only a successful create or rotate may carry a key.
    const issuing = (a: (typeof seen)[number]) =>
      a.method === 'POST' && a.status < 300 && (a.path === '/admin/v1/keys' || a.path.endsWith('/rotate'))
    await call('GET', '/admin/v1/keys?limit=1000')
    await call('GET', `/admin/v1/keys/${created.json.id}`)
    await call('GET', '/admin/v1/audit?limit=1000')
    const secrets = [created.json.key, rotated.json.key].flatMap((key: string) => {
      const secret = parseKey(key)!.secret
      return [key, secret, createHash('sha256').update(secret).digest('hex')]
    })
    const others = seen.filter((a) => !issuing(a)).map((a) => a.text)
    expect(others.length).toBeGreaterThan(40)
    for (const text of others) {
      for (const secret of secrets) expect(text.includes(secret)).toBe(false)
      expect(text).not.toMatch(/sk-sluice-[a-z2-7]{10}-/)
      expect(text).not.toMatch(/secret_?hash|secretHash/i)
    }
  })
})
