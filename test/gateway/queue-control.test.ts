/**
 * Queueing through the control plane (docs/queueing.md): the wait in both ledgers (JSONL and the
 * database's) and per-key queue settings over the tier's, on SQLite and PostgreSQL.
 */
import { createHash } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type ControlHarness, postgresHarness, sqliteHarness } from '../control/harness.js'
import { startTestGateway, type TestGateway } from './helpers.js'

const TOKEN = 'test-admin-token-0123456789abcdef'

/** One call a bucket holds, refilled every 2 s: a second call at once must wait (or be refused). */
const BURST = { burst: { kind: 'tokenBucket', capacity: 1, refillPerSecond: 0.5 } } as const

const HARNESSES: [string, () => ControlHarness][] = [
  ['SQLite', sqliteHarness],
  ['PostgreSQL', postgresHarness],
]

describe.each(HARNESSES)('queueing through the control plane (%s)', (_name, makeHarness) => {
  const harness = makeHarness()
  let gw: TestGateway

  beforeAll(async () => {
    await harness.setup()
    gw = await startTestGateway('memory', {
      database: { url: harness.url(), keyTtl: '1h' },
      tiers: {
        plain: { scope: 'key', limits: BURST, block: false },
        queued: { scope: 'key', limits: BURST, block: false, queue: { maxWait: '10s' } },
      },
      admin: { tokenHash: createHash('sha256').update(TOKEN).digest('hex') },
    })
  }, 60_000)
  afterAll(async () => {
    await gw?.close()
    await harness.teardown()
  })

  async function admin(method: string, path: string, body?: unknown) {
    const response = await fetch(`${gw.url}/admin/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    })
    return { status: response.status, body: (await response.json()) as Record<string, unknown> }
  }

  async function newKey(tier: string, queue?: unknown): Promise<{ id: string; key: string }> {
    const created = await admin('POST', '/keys', {
      name: `k-${tier}`,
      tier,
      ...(queue !== undefined && { queue }),
    })
    expect(created.status).toBe(201)
    return created.body as { id: string; key: string }
  }

  /** One chat call: its status and its x-sluice-queue-ms header (null when it did not wait). */
  async function call(key: string): Promise<{ status: number; queueMs: string | null }> {
    const response = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: 'Hi' }],
        max_tokens: 5,
      }),
    })
    await response.arrayBuffer()
    return { status: response.status, queueMs: response.headers.get('x-sluice-queue-ms') }
  }

  async function ledgerRows(id: string): Promise<Record<string, unknown>[]> {
    await gw.settled()
    await gw.control!.control.ledger.flush()
    return (await admin('GET', `/ledger?key=${id}&limit=100`)).body.items as Record<string, unknown>[]
  }

  it('records the wait of a request that waited in both ledgers, and none for one that did not', async () => {
    const { id, key } = await newKey('queued')
    const first = await call(key)
    const second = await call(key)
    expect([first.status, second.status]).toEqual([200, 200])
    expect(first.queueMs).toBeNull()
    expect(second.queueMs).not.toBeNull()

    const rows = await ledgerRows(id)
    expect(rows.map((r) => r.queueMs).sort()).toEqual([Number(second.queueMs), null].sort())
    const records = (await gw.ledgerRecords()).filter((r) => r.subject === `key:${id}`)
    expect(records.map((r) => r.queueMs ?? null).sort()).toEqual([Number(second.queueMs), null].sort())

    // The usage report sums the waits of the key's group.
    const usage = (await admin('GET', `/usage?groupBy=key&key=${id}`)).body.items as Record<string, unknown>[]
    expect(usage).toHaveLength(1)
    expect(usage[0]!.queueMs).toBe(Number(second.queueMs))
    expect(usage[0]!.queued).toBe(1)
  })

  it('lets a key wait on a tier without a queue, and turns waiting off for a key of a queued tier', async () => {
    const waiting = await newKey('plain', { maxWait: '10s', weight: 2 })
    const key = (await admin('GET', `/keys/${waiting.id}`)).body
    expect(key.queue).toEqual({ maxWait: 10_000, weight: 2 })
    expect((await call(waiting.key)).status).toBe(200)
    const waited = await call(waiting.key)
    expect(waited.status).toBe(200)
    expect(waited.queueMs).not.toBeNull()

    const off = await newKey('queued', { maxWait: 0 })
    expect((await call(off.key)).status).toBe(200)
    const refused = await call(off.key)
    expect(refused).toEqual({ status: 429, queueMs: null })
    const rows = await ledgerRows(off.id)
    expect(rows.map((r) => [r.status, r.queueMs])).toContainEqual([429, null])
  })

  it("applies a change of a key's queue to its next request, without a restart, and audits it", async () => {
    const { id, key } = await newKey('queued', { maxWait: 0 })
    expect((await call(key)).status).toBe(200)
    expect((await call(key)).status).toBe(429)

    const updated = await admin('PATCH', `/keys/${id}`, { queue: null })
    expect(updated.status).toBe(200)
    expect(updated.body.queue).toBeNull()
    const next = await call(key)
    expect(next.status).toBe(200)
    expect(next.queueMs).not.toBeNull()

    const audit = (await admin('GET', `/audit?targetId=${id}&action=key.update`)).body.items as {
      before: { queue: unknown }
      after: { queue: unknown }
    }[]
    expect(audit).toHaveLength(1)
    expect(audit[0]!.before.queue).toEqual({ maxWait: 0 })
    expect(audit[0]!.after.queue).toBeNull()
  })

  it('refuses bad queue settings with a 400 naming the field', async () => {
    const cases: [unknown, RegExp][] = [
      [{ maxWait: -1 }, /queue\.maxWait/],
      [{ maxWait: 'soon' }, /queue\.maxWait/],
      [{ maxQueued: 0 }, /queue\.maxQueued/],
      [{ maxQueuedPerSubject: 1.5 }, /queue\.maxQueuedPerSubject/],
      [{ weight: 0 }, /queue\.weight/],
      [{ wait: '2s' }, /queue/],
      [{}, /queue/],
      ['2s', /queue/],
    ]
    for (const [queue, message] of cases) {
      const answer = await admin('POST', '/keys', { name: 'bad', tier: 'plain', queue })
      expect(answer.status, JSON.stringify(queue)).toBe(400)
      expect(JSON.stringify(answer.body), JSON.stringify(queue)).toMatch(message)
    }
  })
})
