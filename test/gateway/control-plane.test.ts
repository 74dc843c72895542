import { createHash } from 'node:crypto'
import OpenAI, { AuthenticationError, RateLimitError } from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { sqliteHarness } from '../control/harness.js'
import { newKey, startTestGateway, type TestGateway } from './helpers.js'

const TOKEN = 'test-admin-token-0123456789abcdef'
const harness = sqliteHarness()

async function admin(gw: TestGateway, method: string, path: string, body?: unknown) {
  const response = await fetch(`${gw.url}/admin/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const answer = { status: response.status, body: (await response.json()) as Record<string, unknown> }
  return answer
}

const messages = [{ role: 'user' as const, content: 'Tell me about rivers and gates.' }]

describe('the gateway over the control plane (SQLite)', () => {
  let gw: TestGateway
  const yamlKey = newKey('service', 'from-yaml')

  beforeAll(async () => {
    await harness.setup()
    gw = await startTestGateway('memory', {
      database: { url: harness.url(), keyTtl: '1h' },
      tiers: {
        tight: {
          scope: 'key',
          limits: { burst: { kind: 'tokenBucket', capacity: 2, refillPerSecond: 0.001 } },
          block: false,
        },
      },
      auth: { keys: [yamlKey.entry] },
      admin: {},
      ledger: { path: false },
    })
  }, 30_000)
  afterAll(async () => {
    await gw?.close()
    await harness.teardown()
  })

  it('serves the admin API and the dashboard only with a token (404 without one)', async () => {
    const off = await fetch(`${gw.url}/admin/v1/keys`, { headers: { authorization: `Bearer ${TOKEN}` } })
    expect(off.status).toBe(404)
    expect(((await off.json()) as { error: { code: string } }).error.code).toBe('admin_api_off')
  })
})

describe('the gateway over the control plane with an admin token (SQLite)', () => {
  let gw: TestGateway
  const yamlKey = newKey('service', 'from-yaml')
  const sqlite = sqliteHarness()

  beforeAll(async () => {
    await sqlite.setup()
    gw = await startTestGateway('memory', {
      database: { url: sqlite.url(), keyTtl: '1h' },
      tiers: {
        tight: {
          scope: 'key',
          limits: { burst: { kind: 'tokenBucket', capacity: 2, refillPerSecond: 0.001 } },
          block: false,
        },
        metered: {
          scope: 'key',
          limits: {
            calls: { kind: 'slidingWindow', limit: 4, window: '1h' },
            tokens: { kind: 'fixedWindow', unit: 'tokens', limit: 1_000_000, window: '1h' },
            dollars: { kind: 'fixedWindow', unit: 'usd', limit: 100, window: '1h' },
          },
          block: false,
        },
      },
      auth: { keys: [yamlKey.entry] },
      admin: { tokenHash: createHash('sha256').update(TOKEN).digest('hex') },
    })
  }, 30_000)
  afterAll(async () => {
    await gw?.close()
    await sqlite.teardown()
  })

  it('accepts a key created through the admin API at once, and refuses it once revoked', async () => {
    const created = await admin(gw, 'POST', '/keys', { name: 'ci-bot', tier: 'service' })
    expect(created.status).toBe(201)
    const client = new OpenAI({ apiKey: created.body.key as string, baseURL: `${gw.url}/v1`, maxRetries: 0 })
    const answer = await client.chat.completions.create({ model: 'gpt-4o-mini', messages, max_tokens: 20 })
    expect(answer.choices[0]!.message.content!.length).toBeGreaterThan(0)

    expect((await admin(gw, 'POST', `/keys/${created.body.id}/revoke`)).status).toBe(200)
    await expect(
      client.chat.completions.create({ model: 'gpt-4o-mini', messages, max_tokens: 20 }),
    ).rejects.toBeInstanceOf(AuthenticationError)
  })

  it('keeps the admin API to its own body limit and out of the API limits and uploads', async () => {
    const big = await fetch(`${gw.url}/admin/v1/keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'x'.repeat(100_000), tier: 'service' }),
    })
    expect(big.status).toBe(413)
    // Many admin calls from one address: the anonymous tier (20 an hour per IP) never sees them.
    for (let i = 0; i < 25; i++) expect((await admin(gw, 'GET', '/keys?limit=1')).status).toBe(200)
    const status = (await admin(gw, 'GET', '/status')).body
    expect(status.tiers).toEqual(expect.arrayContaining(['service', 'tight', 'metered']))
    // Mounted: the page, or (in a checkout not built yet) the dashboard's own note on building it.
    const dashboard = await fetch(`${gw.url}/dashboard/`)
    const page = await dashboard.text()
    if (dashboard.status === 503) expect(page).toContain('npm run build')
    else expect(dashboard.status).toBe(200)
  })

  it('keeps accepting sluice.yaml keys beside database keys', async () => {
    const client = new OpenAI({ apiKey: yamlKey.key, baseURL: `${gw.url}/v1`, maxRetries: 0 })
    const answer = await client.chat.completions.create({ model: 'gpt-4o-mini', messages, max_tokens: 20 })
    expect(answer.choices.length).toBe(1)
  })

  it('lists and shows sluice.yaml keys read-only through the admin API, and refuses changes to them', async () => {
    const listed = await admin(gw, 'GET', '/keys?source=sluice.yaml')
    expect(listed.status).toBe(200)
    expect(listed.body.items).toEqual([
      expect.objectContaining({ id: 'from-yaml', tier: 'service', source: 'sluice.yaml', readOnly: true }),
    ])
    const all = await admin(gw, 'GET', '/keys?limit=1000')
    const items = all.body.items as { id: string; source: string }[]
    expect(items.at(-1)).toMatchObject({ id: 'from-yaml', source: 'sluice.yaml' })
    expect(all.body.total).toBe(items.length)
    expect((await admin(gw, 'GET', '/keys/from-yaml')).body).toMatchObject({
      id: 'from-yaml',
      readOnly: true,
    })
    const revoke = await admin(gw, 'POST', '/keys/from-yaml/revoke')
    expect(revoke.status).toBe(409)
    expect(JSON.stringify(revoke.body)).toContain('managed in sluice.yaml')
    // Still served.
    const client = new OpenAI({ apiKey: yamlKey.key, baseURL: `${gw.url}/v1`, maxRetries: 0 })
    expect((await client.models.list()).data.length).toBeGreaterThan(0)
  })

  it('applies the key tier and its limit overrides', async () => {
    const created = await admin(gw, 'POST', '/keys', {
      name: 'one-only',
      tier: 'tight',
      limits: { burst: { kind: 'tokenBucket', capacity: 1, refillPerSecond: 0.001 } },
    })
    expect(created.status).toBe(201)
    const client = new OpenAI({ apiKey: created.body.key as string, baseURL: `${gw.url}/v1`, maxRetries: 0 })
    const { response } = await client.chat.completions
      .create({ model: 'gpt-4o-mini', messages, max_tokens: 5 })
      .withResponse()
    expect(response.headers.get('x-ratelimit-limit-requests')).toBe('1')
    await expect(
      client.chat.completions.create({ model: 'gpt-4o-mini', messages, max_tokens: 5 }),
    ).rejects.toBeInstanceOf(RateLimitError)
    // The admin API (and the dashboard's bars) show the key as it is charged: its own tier only,
    // with its override, not the tier's capacity of 2 nor every tier that counts keys.
    const state = await admin(gw, 'GET', `/subjects/${encodeURIComponent(`key:${created.body.id}`)}`)
    expect(state.status).toBe(200)
    const tiers = state.body.tiers as {
      tier: string
      limits: { name: string; limit: number; remaining: number }[]
    }[]
    expect(tiers.map((t) => t.tier)).toEqual(['tight'])
    expect(tiers[0]!.limits).toEqual([expect.objectContaining({ name: 'burst', limit: 1, remaining: 0 })])
    // A key of sluice.yaml is not in the database: every tier that counts keys, as before.
    const yaml = await admin(gw, 'GET', `/subjects/${encodeURIComponent('key:from-yaml')}`)
    expect((yaml.body.tiers as { tier: string }[]).map((t) => t.tier)).toEqual(
      expect.arrayContaining(['service', 'tight', 'metered']),
    )
  })

  it('accepts both secrets during a rotation grace and only the new one after', async () => {
    const created = await admin(gw, 'POST', '/keys', { name: 'rotating', tier: 'service' })
    const rotated = await admin(gw, 'POST', `/keys/${created.body.id}/rotate`, { grace: 1500 })
    expect(rotated.status).toBe(200)
    const old = new OpenAI({ apiKey: created.body.key as string, baseURL: `${gw.url}/v1`, maxRetries: 0 })
    const fresh = new OpenAI({ apiKey: rotated.body.key as string, baseURL: `${gw.url}/v1`, maxRetries: 0 })
    await old.models.list()
    await fresh.models.list()
    const until = Date.parse(rotated.body.previousSecretValidUntil as string)
    await new Promise((r) => setTimeout(r, Math.max(0, until - Date.now()) + 50))
    await expect(old.models.list()).rejects.toBeInstanceOf(AuthenticationError)
    await fresh.models.list()
  })

  it('writes one ledger row per request, served or refused, whose sums equal the counters', async () => {
    const created = await admin(gw, 'POST', '/keys', { name: 'counted', tier: 'metered' })
    const id = created.body.id as string
    const client = new OpenAI({ apiKey: created.body.key as string, baseURL: `${gw.url}/v1`, maxRetries: 0 })
    const sent = 6
    for (let i = 0; i < sent; i++) {
      await client.chat.completions
        .create({ model: 'gpt-4o-mini', messages, max_tokens: 10 + i, stream: i % 2 === 0 })
        .then(async (answer) => {
          if (Symbol.asyncIterator in answer)
            for await (const _ of answer) {
            }
        })
        .catch(() => {})
    }
    const bad = new OpenAI({
      apiKey: `sk-sluice-aaaaaaaaaa-${'x'.repeat(43)}`,
      baseURL: `${gw.url}/v1`,
      maxRetries: 0,
    })
    await expect(bad.models.list()).rejects.toBeInstanceOf(AuthenticationError)
    await gw.settled()
    await gw.control!.control.ledger.flush()

    const rows = (await admin(gw, 'GET', `/ledger?key=${id}&limit=100`)).body.items as Record<
      string,
      unknown
    >[]
    expect(rows.length).toBe(sent)
    expect(rows.filter((r) => r.status === 200).length).toBe(4)
    const refused = rows.filter((r) => r.status === 429)
    expect(refused.map((r) => [r.outcome, r.reason])).toEqual([
      ['rate_limited', 'calls'],
      ['rate_limited', 'calls'],
    ])
    const unauth = (await admin(gw, 'GET', '/ledger?status=401&limit=100')).body.items as Record<
      string,
      unknown
    >[]
    expect(unauth.some((r) => r.outcome === 'unauthenticated' && r.reason === 'invalid_api_key')).toBe(true)

    const usage = (await admin(gw, 'GET', '/usage?groupBy=key')).body.items as Record<string, unknown>[]
    const mine = usage.find((u) => u.group === id)!
    expect(mine.requests).toBe(sent)
    expect(mine.tokens).toBeGreaterThan(0)
    expect(mine.tokens).toBe(await gw.used('metered', `key:${id}`, 'tokens'))
    expect(mine.usd as number).toBeCloseTo(await gw.used('metered', `key:${id}`, 'dollars'), 9)
    expect(await gw.used('metered', `key:${id}`, 'calls')).toBe(4)
  })
})
