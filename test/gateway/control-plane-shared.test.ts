import { createHash } from 'node:crypto'
import OpenAI, { AuthenticationError } from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { postgresHarness } from '../control/harness.js'
import { sharedRedis, startTestGateway, stopRedis, type TestGateway } from './helpers.js'

const TOKEN = 'test-admin-token-0123456789abcdef'
const pg = postgresHarness()

afterAll(stopRedis)

describe('two gateway instances sharing PostgreSQL and Redis', () => {
  let a: TestGateway
  let b: TestGateway

  beforeAll(async () => {
    await pg.setup()
    const redis = await sharedRedis()
    const config = {
      database: { url: pg.url() },
      admin: { tokenHash: createHash('sha256').update(TOKEN).digest('hex') },
      store: { type: 'redis' as const, url: redis.url },
      prefix: `shared-${process.pid}:`,
    }
    a = await startTestGateway('redis', config)
    b = await startTestGateway('redis', config)
  }, 60_000)
  afterAll(async () => {
    await a?.close()
    await b?.close()
    await pg.teardown()
  })

  async function admin(gw: TestGateway, path: string, body?: unknown) {
    const response = await fetch(`${gw.url}/admin/v1${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    })
    return (await response.json()) as Record<string, string>
  }

  it('a key revoked on one instance gets 401 on the other within a second', async () => {
    const created = await admin(a, '/keys', { name: 'shared', tier: 'service' })
    const onB = new OpenAI({ apiKey: created.key, baseURL: `${b.url}/v1`, maxRetries: 0 })
    // Instance B has cached the key (it served it), so only a change notice can stop it.
    await onB.models.list()
    await onB.models.list()

    await admin(a, `/keys/${created.id}/revoke`)
    const revokedAt = Date.now()
    let refusedAfter: number | undefined
    while (Date.now() - revokedAt < 5000) {
      const outcome = await onB.models.list().then(
        () => 'ok',
        (e: unknown) => (e instanceof AuthenticationError ? 'refused' : String(e)),
      )
      if (outcome === 'refused') {
        refusedAfter = Date.now() - revokedAt
        break
      }
      expect(outcome).toBe('ok')
      await new Promise((r) => setTimeout(r, 20))
    }
    expect(refusedAfter).toBeDefined()
    expect(refusedAfter!).toBeLessThan(1000)
  })

  it('an edited tier applies on the other instance', async () => {
    const created = await admin(a, '/keys', { name: 'edited', tier: 'service' })
    const onB = new OpenAI({ apiKey: created.key, baseURL: `${b.url}/v1`, maxRetries: 0 })
    const before = await onB.models.list().withResponse()
    expect(before.response.headers.get('x-ratelimit-limit-requests')).toBe('1000')
    await fetch(`${a.url}/admin/v1/keys/${created.id}`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ tier: 'premium' }),
    })
    await expect
      .poll(
        async () =>
          (await onB.models.list().withResponse()).response.headers.get('x-ratelimit-limit-requests'),
        {
          timeout: 1000,
          interval: 20,
        },
      )
      .toBe('2000')
  })
})
