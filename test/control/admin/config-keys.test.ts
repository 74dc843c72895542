import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ConfigKeyEntry } from '../../../src/control/admin/config-keys.js'
import { type Control, openControl } from '../../../src/control/index.js'
import { type AdminFixture, type Answer, DATABASES, documentValidator, startAdmin } from './harness.js'

/**
 * Keys of sluice.yaml in the admin API: listed after the database's keys (one list, one total,
 * the same filters), shown, and refused for every change with a 409 that says where they live.
 */
describe.each(DATABASES)('admin API: keys of sluice.yaml beside the database keys on %s', (_name, make) => {
  const harness = make()
  let control: Control
  let admin: AdminFixture
  let check: ReturnType<typeof documentValidator>
  /** What the file says now: the test changes it as a reload would. */
  let fileKeys: ConfigKeyEntry[] = [
    { id: 'yaml-ops', tier: 'service', name: 'ops laptop' },
    { id: 'a1b2c3d4e5f60718', tier: 'premium', user: 'ursula' },
    { id: 'yaml-old', tier: 'service', name: 'old batch', revoked: true },
  ]
  const call: AdminFixture['call'] = (method, path, options) => admin.call(method, path, options)
  const valid = (component: string, answer: Answer) => {
    expect(check.errors(component, answer.json), `${component}: ${answer.text}`).toBeUndefined()
  }
  const ids = (answer: Answer) => answer.json.items.map((k: { id: string }) => k.id)
  let dbIds: string[]

  beforeAll(async () => {
    await harness.setup()
    control = await openControl({ url: harness.url() })
    admin = await startAdmin(control, { configKeys: () => fileKeys })
    check = documentValidator((await admin.call('GET', '/admin/v1/openapi.json')).json)
    await call('POST', '/admin/v1/teams', { body: { id: 'research' } })
    dbIds = []
    for (const name of ['batch-a', 'batch-b']) {
      const created = await call('POST', '/admin/v1/keys', {
        body: { name, tier: 'service', team: 'research' },
      })
      expect(created.status).toBe(201)
      valid('IssuedKey', created)
      expect(created.json).toMatchObject({ source: 'database', readOnly: false })
      dbIds.push(created.json.id)
    }
  })
  afterAll(async () => {
    await admin?.close()
    await control?.close()
    await harness.teardown()
  })

  it("lists the database's keys, then the file's, marked read-only, in one total", async () => {
    const all = await call('GET', '/admin/v1/keys?sort=name&order=asc')
    expect(all.status).toBe(200)
    valid('KeyPage', all)
    expect(all.json.total).toBe(5)
    // The file's keys sorted by name too (the second has no name: its id stands for it).
    expect(ids(all)).toEqual([...dbIds, 'a1b2c3d4e5f60718', 'yaml-old', 'yaml-ops'])
    const ops = all.json.items.find((k: { id: string }) => k.id === 'yaml-ops')
    expect(ops).toMatchObject({
      name: 'ops laptop',
      tier: 'service',
      team: null,
      status: 'active',
      source: 'sluice.yaml',
      readOnly: true,
      createdAt: null,
    })
    for (const item of all.json.items.slice(0, 2))
      expect(item).toMatchObject({ source: 'database', readOnly: false })
  })

  it('pages across both sources', async () => {
    const seen: string[] = []
    for (let offset = 0; offset < 5; offset += 2) {
      const page = await call('GET', `/admin/v1/keys?sort=name&order=asc&limit=2&offset=${offset}`)
      valid('KeyPage', page)
      expect(page.json.total).toBe(5)
      expect(page.json.items.length).toBe(Math.min(2, 5 - offset))
      seen.push(...ids(page))
    }
    expect(seen).toEqual([...dbIds, 'a1b2c3d4e5f60718', 'yaml-old', 'yaml-ops'])
    const past = await call('GET', '/admin/v1/keys?offset=10')
    expect(past.json).toMatchObject({ items: [], total: 5 })
  })

  it('filters the file keys as the database keys: tier, user, status, search, team, source', async () => {
    const get = async (query: string) => {
      const answer = await call('GET', `/admin/v1/keys?${query}`)
      expect(answer.status, answer.text).toBe(200)
      valid('KeyPage', answer)
      return ids(answer)
    }
    expect(await get('tier=premium')).toEqual(['a1b2c3d4e5f60718'])
    expect(await get('user=ursula')).toEqual(['a1b2c3d4e5f60718'])
    expect(await get('status=revoked')).toEqual(['yaml-old'])
    expect(await get('status=active&source=sluice.yaml')).toEqual(['yaml-ops', 'a1b2c3d4e5f60718'])
    expect(await get('search=LAPTOP')).toEqual(['yaml-ops'])
    expect(await get('search=a1b2')).toEqual(['a1b2c3d4e5f60718'])
    // A key of the file has no team.
    expect((await get('team=research')).sort()).toEqual([...dbIds].sort())
    expect((await get('source=database')).sort()).toEqual([...dbIds].sort())
    const bad = await call('GET', '/admin/v1/keys?source=file')
    expect(bad.status).toBe(400)
    expect(bad.json.error.param).toBe('source')
  })

  it('shows a key of the file, and refuses to change, revoke or rotate it (409 read_only_key)', async () => {
    const shown = await call('GET', '/admin/v1/keys/yaml-ops')
    expect(shown.status).toBe(200)
    valid('ListedKey', shown)
    valid('ConfigKey', shown)
    expect(shown.json).toMatchObject({ id: 'yaml-ops', source: 'sluice.yaml', readOnly: true })
    const db = await call('GET', `/admin/v1/keys/${dbIds[0]}`)
    valid('ListedKey', db)
    valid('Key', db)

    for (const [method, path, body] of [
      ['PATCH', '/admin/v1/keys/yaml-ops', { tier: 'premium' }],
      ['POST', '/admin/v1/keys/yaml-ops/revoke', undefined],
      ['POST', '/admin/v1/keys/yaml-ops/rotate', { grace: '1h' }],
    ] as const) {
      const refused = await call(method, path, body === undefined ? {} : { body })
      expect(refused.status, `${method} ${path}`).toBe(409)
      valid('Error', refused)
      expect(refused.json.error).toMatchObject({ code: 'read_only_key', param: 'id' })
      expect(refused.json.error.message).toContain('managed in sluice.yaml')
    }
    // Nothing was written: no audit row names it.
    const audit = await call('GET', '/admin/v1/audit?limit=100')
    expect(audit.text).not.toContain('yaml-ops')
  })

  it('follows the file (a reload): a key gone from it is a 404, a new one is listed', async () => {
    fileKeys = [{ id: 'yaml-new', tier: 'service' }]
    expect((await call('GET', '/admin/v1/keys/yaml-ops')).status).toBe(404)
    const list = await call('GET', '/admin/v1/keys?source=sluice.yaml')
    expect(ids(list)).toEqual(['yaml-new'])
    expect((await call('GET', '/admin/v1/keys/yaml-new')).json).toMatchObject({ name: 'yaml-new' })
  })
})
