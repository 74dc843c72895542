/**
 * Detections in the admin API: listed, inspected, cleared and allow-listed by an operator (each an
 * audit row), and in the events feed; failed keys from many addresses raise one gateway-wide alert.
 */
import { createHash } from 'node:crypto'
import OpenAI, { AuthenticationError, RateLimitError } from 'openai'
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

const chat = (client: OpenAI, content: string, headers: Record<string, string> = {}) =>
  client.chat.completions.create(
    { model: 'gpt-4o-mini', messages: [{ role: 'user', content }], max_tokens: 8 },
    { headers },
  )

describe('detections in the admin API', () => {
  let gw: TestGateway
  const k = newKey('service', 'looper')

  beforeAll(async () => {
    await sqlite.setup()
    gw = await startTestGateway('memory', {
      database: { url: sqlite.url(), keyTtl: '1h' },
      auth: { keys: [k.entry], trustProxy: ['loopback'], failedAuth: { limit: 1000, window: '1m' } },
      admin: { tokenHash: createHash('sha256').update(TOKEN).digest('hex') },
      detectors: {
        loop: { alertAt: 3, throttleAt: 3, blockAt: 0, throttlePerMinute: 1 },
        stuffing: { alertAt: 1000, addressesAt: 5 },
      },
    })
  }, 30_000)
  afterAll(async () => {
    await gw?.close()
    await sqlite.teardown()
  })

  it('lists, inspects, clears and allow-lists; each operator action is audited', async () => {
    const client = new OpenAI({ apiKey: k.key, baseURL: `${gw.url}/v1`, maxRetries: 0 })
    // The throttle keeps one request a clock minute: no minute turns before the refusal.
    await clearOfWindowEdge(MINUTE, 10_000)
    for (let i = 0; i < 3; i++) await chat(client, 'loop')
    await expect(chat(client, 'loop')).rejects.toBeInstanceOf(RateLimitError)
    await gw.sluice.flush()

    const list = await admin(gw, 'GET', '/detections')
    expect(list.status).toBe(200)
    const items = list.body.items as Record<string, unknown>[]
    expect(items.map((i) => [i.subject, i.detector, i.level])).toEqual([['key:looper', 'loop', 'throttle']])

    const state = await admin(gw, 'GET', '/detections/key%3Alooper')
    expect(state.body).toMatchObject({
      subject: 'key:looper',
      flags: { loop: { level: 'throttle' } },
      allowListed: false,
    })

    const events = await admin(gw, 'GET', '/events?type=detection')
    expect((events.body.items as { subject: string }[]).map((e) => e.subject)).toEqual(['key:looper'])

    expect((await admin(gw, 'POST', '/detections/key%3Alooper/clear', { detector: 'loop' })).status).toBe(200)
    expect((await admin(gw, 'GET', '/detections/key%3Alooper')).body.flags).toEqual({})
    await expect(chat(client, 'loop')).resolves.toBeDefined()

    expect((await admin(gw, 'POST', '/detections/key%3Alooper/allow', {})).status).toBe(200)
    for (let i = 0; i < 6; i++) await chat(client, 'loop')
    expect((await admin(gw, 'GET', '/detections/key%3Alooper')).body.allowListed).toBe(true)

    const audit = await admin(gw, 'GET', '/audit?targetId=key%3Alooper')
    expect((audit.body.items as { action: string; actor: string }[]).map((a) => [a.action, a.actor])).toEqual(
      [
        ['detection.allow', 'admin-api:ops'],
        ['detection.clear', 'admin-api:ops'],
        ['detection.raise', 'sluice'],
      ],
    )
    const bad = await admin(gw, 'POST', '/detections/key%3Alooper/clear', { detector: 'nope' })
    expect(bad.status).toBe(400)
  })

  it('failed keys from many addresses raise one gateway-wide alert', async () => {
    for (let i = 0; i < 8; i++) {
      const wrong = new OpenAI({ apiKey: `sk-sluice-wrong-${i}`, baseURL: `${gw.url}/v1`, maxRetries: 0 })
      await expect(chat(wrong, 'hi', { 'x-forwarded-for': `203.0.113.${i + 1}` })).rejects.toBeInstanceOf(
        AuthenticationError,
      )
    }
    await gw.sluice.flush()
    const list = await admin(gw, 'GET', '/detections?subject=gateway')
    const items = list.body.items as Record<string, unknown>[]
    expect(items.map((i) => [i.detector, i.value])).toEqual([['stuffing', 5]])
  })

  it('failed keys sharing a prefix: listed and inspected under key-prefix:<prefix>', async () => {
    for (let i = 0; i < 10; i++) {
      const guess = `sk-sluice-qrstuvwxyz-${'A'.repeat(40)}${i}`
      const wrong = new OpenAI({ apiKey: guess, baseURL: `${gw.url}/v1`, maxRetries: 0 })
      await expect(chat(wrong, 'hi', { 'x-forwarded-for': `198.51.100.${i + 1}` })).rejects.toBeInstanceOf(
        AuthenticationError,
      )
    }
    await gw.sluice.flush()
    const list = await admin(gw, 'GET', '/detections?subject=key-prefix%3Aqrstuvwxyz')
    const items = list.body.items as Record<string, unknown>[]
    expect(items.map((i) => [i.detector, i.prefix, i.value])).toEqual([['stuffing', 'qrstuvwxyz', 10]])
    const state = await admin(gw, 'GET', '/detections/key-prefix%3Aqrstuvwxyz')
    expect(state.status).toBe(200)
    expect(state.body).toMatchObject({ subject: 'key-prefix:qrstuvwxyz', usualAddresses: 0 })
  })
})
