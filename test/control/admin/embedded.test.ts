import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { adminApi, generateAdminToken } from '../../../src/control/admin/index.js'
import { type Control, openControl } from '../../../src/control/index.js'
import { slidingWindow } from '../../../src/core/limits.js'
import { type Decision, Limiter } from '../../../src/limiter.js'
import { MemoryStore } from '../../../src/store/memory.js'
import { sqliteHarness } from '../harness.js'
import { callAdmin, captureLogs, documentValidator } from './harness.js'

/**
 * The plugin inside another app, as the gateway will mount it: the host's own parser, 404 handler
 * and routes stay as they were, and the subject routes reach a real limiter.
 */
describe('admin API mounted in a host Fastify app', () => {
  const harness = sqliteHarness()
  const { token } = generateAdminToken()
  const logs = captureLogs()
  const store = new MemoryStore()
  const limiter = new Limiter({
    store,
    policy: 'service',
    limits: { hourly: slidingWindow({ limit: 3, windowMs: 3_600_000 }) },
    block: { after: 2, withinMs: 60_000 },
  })
  const inspected: string[] = []
  let control: Control
  let app: FastifyInstance
  let base: string
  const call = (method: string, path: string, o: Parameters<typeof callAdmin>[4] = {}) =>
    callAdmin(base, token, method, path, o)

  beforeAll(async () => {
    await harness.setup()
    control = await openControl({ url: harness.url() })
    app = Fastify({ loggerInstance: pino({ level: 'trace' }, logs.destination) as FastifyBaseLogger })
    // What the gateway does: every body is text for its own JSON handling, and its own 404 shape.
    app.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => done(null, body))
    app.setNotFoundHandler((_request, reply) => {
      reply.code(404).send({
        error: { message: 'host 404', type: 'invalid_request_error', param: null, code: 'unknown_url' },
      })
    })
    app.post('/v1/echo', async (request) => ({ got: request.body }))
    await app.register(adminApi, {
      control,
      auth: { token },
      tiers: ['service'],
      subjects: {
        async inspect(subject): Promise<Record<string, Decision>> {
          inspected.push(subject)
          return subject.startsWith('key:') ? { service: await limiter.peek(subject, { requests: 0 }) } : {}
        },
        async unblock(subject) {
          await limiter.unblock(subject)
        },
      },
      storeStatus: () => ({ type: 'memory', keys: store.size }),
      version: '9.9.9-test',
    })
    await app.listen({ host: '127.0.0.1', port: 0 })
    const address = app.server.address()
    base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`
  })
  afterAll(async () => {
    await app?.close()
    await store.close()
    await control?.close()
    await harness.teardown()
  })

  it("leaves the host's routes, parser and 404 as they were", async () => {
    const echo = await call('POST', '/v1/echo', {
      token: null,
      rawBody: 'plain text',
      headers: { 'content-type': 'text/plain' },
    })
    expect(echo.json).toEqual({ got: 'plain text' })
    const hostMissing = await call('GET', '/v2/nothing', { token: null })
    expect(hostMissing.json.error.message).toBe('host 404')
    const adminMissing = await call('GET', '/admin/v1/nothing')
    expect(adminMissing.status).toBe(404)
    expect(adminMissing.json.error.code).toBe('unknown_route')
    // Unknown admin URLs are behind the token too: nothing about the API is told to a stranger.
    expect((await call('GET', '/admin/v1/nothing', { token: null })).status).toBe(401)
  })

  it('serves the API with a JSON body whatever its content type (curl -d)', async () => {
    const team = await call('POST', '/admin/v1/teams', {
      rawBody: '{"id":"research"}',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    })
    expect(team.status).toBe(201)
    const status = await call('GET', '/admin/v1/status')
    expect(status.status).toBe(200)
    expect(status.json).toMatchObject({
      version: '9.9.9-test',
      database: { dialect: 'sqlite', reachable: true, schema: expect.any(String) },
      store: { type: 'memory' },
    })
    const document = (await call('GET', '/admin/v1/openapi.json')).json
    expect(document.info.version).toBe('9.9.9-test')
    expect(documentValidator(document).errors('Status', status.json)).toBeUndefined()
  })

  it("inspects a subject's live limits and unblocks it through the gateway's limiter, recording who did", async () => {
    const subject = 'key:blockedkey'
    for (let i = 0; i < 3; i++) expect((await limiter.consume(subject)).allowed).toBe(true)
    for (let i = 0; i < 2; i++) expect((await limiter.consume(subject)).allowed).toBe(false)
    const path = `/admin/v1/subjects/${encodeURIComponent(subject)}`
    const before = await call('GET', path)
    expect(before.status).toBe(200)
    expect(before.json).toMatchObject({
      subject,
      tiers: [{ tier: 'service', allowed: false, blocked: true }],
    })
    expect(before.json.tiers[0].limits[0]).toMatchObject({ name: 'hourly', limit: 3, remaining: 0 })
    const document = (await call('GET', '/admin/v1/openapi.json')).json
    expect(documentValidator(document).errors('SubjectState', before.json)).toBeUndefined()

    const unblocked = await call('POST', `${path}/unblock`, { headers: { 'x-sluice-actor': 'ops' } })
    expect(unblocked.status).toBe(200)
    expect(unblocked.json).toEqual({ subject, unblocked: true })
    const after = await call('GET', path)
    expect(after.json.tiers[0]).toMatchObject({ blocked: false })
    expect(after.json.tiers[0].limits[0]).toMatchObject({ name: 'hourly', remaining: 0 })
    const audit = await call('GET', '/admin/v1/audit?targetKind=subject')
    expect(audit.json.items).toHaveLength(1)
    expect(audit.json.items[0]).toMatchObject({
      action: 'subject.unblock',
      actor: 'admin-api:ops',
      targetKind: 'subject',
      targetId: subject,
    })
  })

  it('answers 404 for a subject no tier counts, 400 for a malformed one; the subject arrives decoded', async () => {
    const ipv6 = 'ip:2001:db8:1:2::/64'
    const missing = await call('GET', `/admin/v1/subjects/${encodeURIComponent(ipv6)}`)
    expect(missing.status).toBe(404)
    expect(inspected).toContain(ipv6)
    const bad = await call('GET', '/admin/v1/subjects/whoever')
    expect(bad.status).toBe(400)
    expect(bad.json.error.param).toBe('subject')
    expect((await call('POST', '/admin/v1/subjects/whoever/unblock')).json.error.param).toBe('subject')
  })

  it('refuses to be registered under a prefix (its paths and document would disagree)', async () => {
    const host = Fastify()
    const mounting = (async () => {
      await host.register(
        async (child) => {
          await child.register(adminApi, { control, auth: { token } })
        },
        { prefix: '/ops' },
      )
      await host.ready()
    })()
    await expect(mounting).rejects.toThrow(/at the root/)
    await host.close().catch(() => {})
  })

  it('answers 501 for subjects when no limiter was given', async () => {
    const bare = Fastify()
    await bare.register(adminApi, { control, auth: { token } })
    await bare.listen({ host: '127.0.0.1', port: 0 })
    try {
      const address = bare.server.address()
      const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`
      for (const [method, path] of [
        ['GET', '/admin/v1/subjects/key%3Aabc'],
        ['POST', '/admin/v1/subjects/key%3Aabc/unblock'],
      ]) {
        const answer = await callAdmin(url, token, method!, path!)
        expect(answer.status).toBe(501)
        expect(answer.json.error.code).toBe('not_implemented')
      }
      expect((await callAdmin(url, token, 'GET', '/admin/v1/status')).json.store).toBeNull()
    } finally {
      await bare.close()
    }
  })

  it("keeps the token out of the host's request logs", async () => {
    await call('GET', '/admin/v1/keys')
    await call('GET', '/admin/v1/keys', { token: `${token}-wrong` })
    await new Promise((r) => setTimeout(r, 20))
    const text = logs.text()
    expect(text).toContain('/admin/v1/keys')
    expect(text).not.toContain(token)
  })
})
