import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Control, type LedgerEntry, openControl } from '../../../src/control/index.js'
import { type AdminFixture, type Answer, DATABASES, documentValidator, startAdmin } from './harness.js'

const DAY = 86_400_000
const T0 = Date.parse('2026-11-25T10:00:00Z')

/** 30 requests over three days, two keys of one team and one without, three models. */
function rows(): LedgerEntry[] {
  const out: LedgerEntry[] = []
  for (let i = 0; i < 30; i++) {
    const key = i % 3 === 0 ? 'keyaaaaaaa' : i % 3 === 1 ? 'keybbbbbbb' : 'keyccccccc'
    const refused = i % 5 === 4
    out.push({
      time: T0 + Math.floor(i / 10) * DAY + i * 60_000,
      keyId: key,
      team: key === 'keyccccccc' ? undefined : 'research',
      user: i % 2 === 0 ? 'alice' : 'bob',
      tier: key === 'keyccccccc' ? 'premium' : 'service',
      model: ['gpt-4o-mini', 'gpt-4o', 'llama3'][i % 3 === 0 ? 0 : i % 2 === 0 ? 1 : 2],
      status: refused ? 429 : 200,
      outcome: refused ? 'rate_limited' : 'ok',
      reason: refused ? 'tokens' : undefined,
      promptTokens: refused ? 0 : 100 + i,
      completionTokens: refused ? 0 : 10,
      usd: refused ? 0 : (i + 1) / 1000,
    })
  }
  return out
}

describe.each(DATABASES)('admin API: usage, ledger and audit on %s', (_name, makeHarness) => {
  const harness = makeHarness()
  let control: Control
  let admin: AdminFixture
  let check: ReturnType<typeof documentValidator>
  const entries = rows()
  const valid = (component: string, answer: Answer) => {
    expect(answer.status, answer.text).toBe(200)
    expect(check.errors(component, answer.json), answer.text).toBeUndefined()
  }
  const sum = (list: LedgerEntry[], f: (e: LedgerEntry) => number) => list.reduce((a, e) => a + f(e), 0)

  beforeAll(async () => {
    await harness.setup()
    control = await openControl({ url: harness.url() })
    admin = await startAdmin(control)
    check = documentValidator((await admin.call('GET', '/admin/v1/openapi.json')).json)
    for (const e of entries) control.ledger.append(e)
    await control.ledger.flush()
  })
  afterAll(async () => {
    await admin?.close()
    await control?.close()
    await harness.teardown()
  })

  it('totals over a range: one grand total, then per key, team, user, model, tier and day', async () => {
    const range = `from=${new Date(T0).toISOString()}&to=${new Date(T0 + 3 * DAY).toISOString()}`
    const total = await admin.call('GET', `/admin/v1/usage?${range}`)
    valid('UsageReport', total)
    expect(total.json.groupBy).toBeNull()
    expect(total.json.from).toBe(new Date(T0).toISOString())
    expect(total.json.items).toHaveLength(1)
    expect(total.json.items[0]).toMatchObject({
      group: null,
      requests: 30,
      served: 24,
      refused: 6,
      failed: 0,
      promptTokens: sum(entries, (e) => e.promptTokens ?? 0),
      completionTokens: sum(entries, (e) => e.completionTokens ?? 0),
    })
    expect(total.json.items[0].usd).toBeCloseTo(
      sum(entries, (e) => e.usd ?? 0),
      9,
    )

    for (const [groupBy, field] of [
      ['key', 'keyId'],
      ['team', 'team'],
      ['user', 'user'],
      ['model', 'model'],
      ['tier', 'tier'],
    ] as const) {
      const grouped = await admin.call('GET', `/admin/v1/usage?${range}&groupBy=${groupBy}`)
      valid('UsageReport', grouped)
      const expected = new Map<string | null, number>()
      for (const e of entries) expected.set(e[field] ?? null, (expected.get(e[field] ?? null) ?? 0) + 1)
      const got = new Map(
        grouped.json.items.map((g: { group: string | null; requests: number }) => [g.group, g.requests]),
      )
      expect(got, groupBy).toEqual(expected)
    }

    const days = await admin.call('GET', `/admin/v1/usage?${range}&groupBy=day`)
    expect(days.json.items.map((g: { group: string; requests: number }) => [g.group, g.requests])).toEqual([
      ['2026-11-25', 10],
      ['2026-11-26', 10],
      ['2026-11-27', 10],
    ])
    // A day that starts at 12:00 UTC moves the first ten requests (10:00–10:09 UTC) to the 24th.
    const shifted = await admin.call('GET', `/admin/v1/usage?${range}&groupBy=day&utcOffsetMinutes=-720`)
    expect(shifted.json.items[0]).toMatchObject({ group: '2026-11-24', requests: 10 })

    const oneDay = await admin.call(
      'GET',
      `/admin/v1/usage?from=${T0 + DAY - 3_600_000}&to=${T0 + 2 * DAY - 3_600_000}&groupBy=key`,
    )
    expect(oneDay.json.items.reduce((a: number, g: { requests: number }) => a + g.requests, 0)).toBe(10)

    const byUsd = await admin.call('GET', `/admin/v1/usage?${range}&groupBy=model&sort=usd`)
    const usd = byUsd.json.items.map((g: { usd: number }) => g.usd)
    expect(usd).toEqual([...usd].sort((a, b) => b - a))

    const filtered = await admin.call('GET', `/admin/v1/usage?${range}&groupBy=key&team=research&outcome=ok`)
    expect(filtered.json.items.map((g: { group: string }) => g.group).sort()).toEqual([
      'keyaaaaaaa',
      'keybbbbbbb',
    ])
  })

  it('answers 400 naming the query field', async () => {
    const bad = async (query: string, param: string) => {
      const answer = await admin.call('GET', `/admin/v1/usage?${query}`)
      expect(answer.status, answer.text).toBe(400)
      expect(answer.json.error.param).toBe(param)
    }
    await bad('groupBy=colour', 'groupBy')
    await bad('from=yesterday', 'from')
    await bad('to=2026-13-45', 'to')
    await bad('utcOffsetMinutes=9999', 'utcOffsetMinutes')
    await bad('status=99', 'status')
    await bad('sort=cost', 'sort')
    await bad('model=', 'model')
  })

  it('ledger rows: filtered, newest first, every row exactly once across cursor pages', async () => {
    const first = await admin.call('GET', '/admin/v1/ledger?limit=7')
    valid('LedgerPage', first)
    const ids: number[] = []
    let page = first
    for (;;) {
      ids.push(...page.json.items.map((r: { id: number }) => r.id))
      const times = page.json.items.map((r: { time: string }) => Date.parse(r.time))
      expect(times).toEqual([...times].sort((a, b) => b - a))
      if (page.json.next === undefined) break
      page = await admin.call('GET', `/admin/v1/ledger?limit=7&cursor=${page.json.next}`)
      valid('LedgerPage', page)
    }
    expect(ids).toHaveLength(30)
    expect(new Set(ids).size).toBe(30)

    const refused = await admin.call('GET', '/admin/v1/ledger?status=429&key=keyaaaaaaa&limit=1000')
    valid('LedgerPage', refused)
    const expected = entries.filter((e) => e.status === 429 && e.keyId === 'keyaaaaaaa')
    expect(refused.json.items).toHaveLength(expected.length)
    for (const row of refused.json.items)
      expect(row).toMatchObject({ outcome: 'rate_limited', reason: 'tokens', keyId: 'keyaaaaaaa' })

    const badCursor = await admin.call('GET', '/admin/v1/ledger?cursor=bm90LWEtY3Vyc29y')
    expect(badCursor.status).toBe(400)
    expect(badCursor.json.error.param).toBe('cursor')
  })

  it('the audit log: filtered by action and actor, paged newest first', async () => {
    for (let i = 0; i < 5; i++) {
      await admin.call('POST', '/admin/v1/teams', {
        body: { id: `team-${i}` },
        headers: { 'x-sluice-actor': 'alice' },
      })
    }
    await admin.call('PATCH', '/admin/v1/teams/team-0', {
      body: { name: 'Zero' },
      headers: { 'x-sluice-actor': 'bob' },
    })
    const creates = await admin.call('GET', '/admin/v1/audit?action=team.create&limit=2')
    valid('AuditPage', creates)
    expect(creates.json.items.map((e: { targetId: string }) => e.targetId)).toEqual(['team-4', 'team-3'])
    const next = await admin.call(
      'GET',
      `/admin/v1/audit?action=team.create&limit=2&cursor=${creates.json.next}`,
    )
    expect(next.json.items.map((e: { targetId: string }) => e.targetId)).toEqual(['team-2', 'team-1'])

    const bob = await admin.call('GET', '/admin/v1/audit?actor=admin-api:bob')
    expect(bob.json.items).toHaveLength(1)
    expect(bob.json.items[0]).toMatchObject({
      action: 'team.update',
      targetKind: 'team',
      targetId: 'team-0',
      before: { name: 'team-0' },
      after: { name: 'Zero' },
    })
    const future = await admin.call('GET', `/admin/v1/audit?from=${Date.now() + DAY}`)
    expect(future.json.items).toEqual([])
    const bad = await admin.call('GET', '/admin/v1/audit?action=team.explode')
    expect(bad.status).toBe(400)
    expect(bad.json.error.param).toBe('action')
  })
})
