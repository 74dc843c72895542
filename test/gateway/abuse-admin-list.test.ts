/**
 * The detections list as the dashboard reads it: each detection's state now (active while its
 * flag stands, cleared by an operator, expired), the subject's allow-listing, filters by
 * detector, subject, state and shadow, and pages by offset with the matching total.
 */
import { createHash } from 'node:crypto'
import OpenAI, { RateLimitError } from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { sqliteHarness } from '../control/harness.js'
import { clearOfWindowEdge, MINUTE } from '../helpers/window-edge.js'
import { newKey, startTestGateway, type TestGateway } from './helpers.js'

const TOKEN = 'test-admin-token-0123456789abcdef'
const sqlite = sqliteHarness()

async function admin(gw: TestGateway, method: string, path: string, body?: unknown) {
  const response = await fetch(`${gw.url}/admin/v1${path}`, {
    method,
    headers: {
      authorization: `Bearer ${TOKEN}`,
      'content-type': 'application/json',
      'x-sluice-actor': 'ops',
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  return { status: response.status, body: (await response.json()) as Record<string, unknown> }
}
type Item = Record<string, unknown>
const list = async (gw: TestGateway, query = '') =>
  (await admin(gw, 'GET', `/detections${query}`)).body as { items: Item[]; total: number }

const chat = (client: OpenAI, content: string) =>
  client.chat.completions.create({
    model: 'gpt-4o-mini',
    messages: [{ role: 'user', content }],
    max_tokens: 8,
  })

describe('the detections list: state, filters, pages', () => {
  let gw: TestGateway
  const a = newKey('service', 'loopera')
  const b = newKey('service', 'looperb')
  const quiet = newKey('trial', 'quietone')

  beforeAll(async () => {
    await sqlite.setup()
    gw = await startTestGateway('memory', {
      database: { url: sqlite.url(), keyTtl: '1h' },
      auth: { keys: [a.entry, b.entry, quiet.entry] },
      tiers: {
        service: { scope: 'key', limits: { calls: { kind: 'fixedWindow', limit: 1000, window: '1h' } } },
        trial: { scope: 'key', limits: { calls: { kind: 'fixedWindow', limit: 1000, window: '1h' } } },
      },
      admin: { tokenHash: createHash('sha256').update(TOKEN).digest('hex') },
      detectors: {
        loop: { alertAt: 2, throttleAt: 3, blockAt: 0, throttlePerMinute: 1 },
        tiers: { trial: { loop: { shadow: true } } },
      },
    })
  }, 30_000)
  afterAll(async () => {
    await gw?.close()
    await sqlite.teardown()
  })

  it('says which detections stand, which an operator cleared, and filters and pages them', async () => {
    // The throttle keeps one request a clock minute: no minute turns before the refusals.
    await clearOfWindowEdge(MINUTE, 10_000)
    for (const k of [a, b]) {
      const client = new OpenAI({ apiKey: k.key, baseURL: `${gw.url}/v1`, maxRetries: 0 })
      for (let i = 0; i < 3; i++) await chat(client, 'again')
      await expect(chat(client, 'again')).rejects.toBeInstanceOf(RateLimitError)
    }
    const shadowed = new OpenAI({ apiKey: quiet.key, baseURL: `${gw.url}/v1`, maxRetries: 0 })
    for (let i = 0; i < 4; i++) await chat(shadowed, 'again')
    await gw.sluice.flush()

    const all = await list(gw)
    expect(all.total).toBe(6)
    expect(all.items.map((i) => [i.subject, i.level, i.state, i.shadow])).toEqual([
      ['key:quietone', 'throttle', 'active', true],
      ['key:quietone', 'alert', 'active', true],
      ['key:looperb', 'throttle', 'active', false],
      ['key:looperb', 'alert', 'active', false],
      ['key:loopera', 'throttle', 'active', false],
      ['key:loopera', 'alert', 'active', false],
    ])
    expect(all.items[0]).toMatchObject({ cleared: null, allowListed: false, until: expect.any(String) })

    expect((await admin(gw, 'POST', '/detections/key%3Aloopera/clear', {})).status).toBe(200)
    expect((await admin(gw, 'POST', '/detections/key%3Alooperb/allow', { forMs: 3_600_000 })).status).toBe(
      200,
    )
    const after = await list(gw, '?subject=key%3Aloopera')
    expect(after.items.map((i) => [i.state, i.cleared])).toEqual([
      ['cleared', { at: expect.any(String), by: 'admin-api:ops' }],
      ['cleared', { at: expect.any(String), by: 'admin-api:ops' }],
    ])
    expect((await list(gw, '?subject=key%3Alooperb&limit=1')).items[0]).toMatchObject({
      state: 'active',
      allowListed: expect.stringMatching(/^\d{4}-/),
    })

    const cleared = await list(gw, '?state=cleared')
    expect([cleared.total, ...cleared.items.map((i) => i.subject)]).toEqual([2, 'key:loopera', 'key:loopera'])
    const active = await list(gw, '?state=active&shadow=false')
    expect([active.total, ...active.items.map((i) => i.subject)]).toEqual([2, 'key:looperb', 'key:looperb'])
    expect((await list(gw, '?shadow=true')).total).toBe(2)
    expect((await list(gw, '?detector=loop')).total).toBe(6)
    expect((await list(gw, '?detector=spend')).total).toBe(0)

    const second = await list(gw, '?limit=4&offset=4')
    expect([second.total, ...second.items.map((i) => [i.subject, i.level])]).toEqual([
      6,
      ['key:loopera', 'throttle'],
      ['key:loopera', 'alert'],
    ])
    // A throttle raised again after a clear is a new detection; the cleared ones stay cleared.
    const client = new OpenAI({ apiKey: a.key, baseURL: `${gw.url}/v1`, maxRetries: 0 })
    for (let i = 0; i < 3; i++) await chat(client, 'once more')
    await gw.sluice.flush()
    expect((await list(gw, '?subject=key%3Aloopera')).items.map((i) => [i.level, i.state])).toEqual([
      ['throttle', 'active'],
      ['alert', 'active'],
      ['throttle', 'cleared'],
      ['alert', 'cleared'],
    ])

    for (const bad of ['?state=gone', '?shadow=maybe', '?offset=-1', '?offset=1000']) {
      const answer = await admin(gw, 'GET', `/detections${bad}`)
      expect(answer.status, bad).toBe(400)
      expect(JSON.stringify(answer.body)).toMatch(/state|shadow|offset/)
    }
  })
})
