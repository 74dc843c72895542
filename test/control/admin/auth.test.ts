import { connect } from 'node:net'
import { Agent } from 'undici'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import {
  adminAuthFrom,
  generateAdminToken,
  hashAdminToken,
  startAdminServer,
} from '../../../src/control/admin/index.js'
import { type Control, openControl } from '../../../src/control/index.js'
import { sqliteHarness } from '../harness.js'
import { type AdminFixture, callAdmin, captureLogs, startAdmin } from './harness.js'

describe('admin API authentication', () => {
  const harness = sqliteHarness()
  let control: Control
  const started: { close(): Promise<void> }[] = []
  /** Requests from a second loopback address: a different client for the failed-auth count. */
  const otherAddress = new Agent({ localAddress: '127.0.0.2' })
  const start = async (options: Parameters<typeof startAdmin>[1] = {}): Promise<AdminFixture> => {
    const fixture = await startAdmin(control, options)
    started.push(fixture)
    return fixture
  }

  beforeAll(async () => {
    await harness.setup()
    control = await openControl({ url: harness.url() })
  })
  afterEach(async () => {
    await Promise.all(started.splice(0).map((s) => s.close()))
  })
  afterAll(async () => {
    await otherAddress.close()
    await control?.close()
    await harness.teardown()
  })

  it('is off without a token: every /admin/v1 URL answers 404, whatever is sent', async () => {
    const server = await startAdminServer({ control, logger: false })
    started.push(server)
    const token = generateAdminToken().token
    for (const [method, path] of [
      ['GET', '/admin/v1/keys'],
      ['GET', '/admin/v1/openapi.json'],
      ['POST', '/admin/v1/keys'],
      ['GET', '/admin/v1/status'],
      ['GET', '/admin/v1'],
    ]) {
      for (const bearer of [null, token]) {
        const body = method === 'POST' ? { name: 'x', tier: 'service' } : undefined
        const answer = await callAdmin(server.url, bearer, method!, path!, { body })
        expect(answer.status, `${method} ${path}`).toBe(404)
        expect(answer.json.error).toMatchObject({ code: 'admin_api_off', type: 'not_found_error' })
      }
    }
    // Refused before the body is read: a body far over the limit is still a 404, not a 413.
    const big = await callAdmin(server.url, token, 'POST', '/admin/v1/keys', {
      rawBody: 'x'.repeat(2_000_000),
    })
    expect(big.status).toBe(404)
    expect(await control.keys.list()).toMatchObject({ total: 0 })
  })

  it('closes the connection of a refused request whose body it did not read, instead of waiting for it', async () => {
    const off = await startAdminServer({ control, logger: false })
    started.push(off)
    const on = await start()
    for (const [url, status] of [
      [off.url, 404],
      [on.server.url, 401],
    ] as const) {
      // Headers announce 2 MB; only 1 KB follows, and the client then waits.
      const { port } = new URL(url)
      const socket = connect({ host: '127.0.0.1', port: Number(port) })
      const received: Buffer[] = []
      socket.on('data', (chunk: Buffer) => received.push(chunk))
      const ended = new Promise<'ended' | 'still open'>((resolve) => {
        socket.on('end', () => resolve('ended'))
        socket.on('close', () => resolve('ended'))
        setTimeout(() => resolve('still open'), 5000).unref()
      })
      socket.write(
        `POST /admin/v1/keys HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong-token\r\n` +
          `Content-Type: application/json\r\nContent-Length: 2000000\r\n\r\n${'x'.repeat(1024)}`,
      )
      expect(await ended, url).toBe('ended')
      socket.destroy()
      const response = Buffer.concat(received).toString('latin1')
      expect(response).toMatch(new RegExp(`^HTTP/1.1 ${status} `))
      expect(response.toLowerCase()).toContain('connection: close')
    }
  })

  it('answers 401 for a missing, malformed or wrong token, with WWW-Authenticate and no-store', async () => {
    const admin = await start()
    const missing = await admin.call('GET', '/admin/v1/keys', { token: null })
    expect(missing.status).toBe(401)
    expect(missing.json.error).toMatchObject({ type: 'authentication_error', code: 'missing_admin_token' })
    expect(missing.headers.get('www-authenticate')).toBe('Bearer realm="sluice admin"')
    expect(missing.headers.get('cache-control')).toBe('no-store')
    const wrong = await admin.call('GET', '/admin/v1/keys', { token: `${admin.token}x` })
    expect(wrong.status).toBe(401)
    expect(wrong.json.error.code).toBe('invalid_admin_token')
    const basic = await admin.call('GET', '/admin/v1/keys', {
      token: null,
      headers: { authorization: `Basic ${Buffer.from(`admin:${admin.token}`).toString('base64')}` },
    })
    expect(basic.status).toBe(401)
    const right = await admin.call('GET', '/admin/v1/keys', { headers: {} })
    expect(right.status).toBe(200)
    const lowercaseScheme = await admin.call('GET', '/admin/v1/keys', {
      token: null,
      headers: { authorization: `bearer ${admin.token}` },
    })
    expect(lowercaseScheme.status).toBe(200)
  })

  it('checks the token before reading the body: no 400 or 413 for an unauthenticated client', async () => {
    const admin = await start({ bodyLimit: 1024 })
    const badJson = await admin.call('POST', '/admin/v1/keys', { token: null, rawBody: '{"name":' })
    expect(badJson.status).toBe(401)
    const huge = await admin.call('POST', '/admin/v1/keys', {
      token: 'wrong-token',
      rawBody: 'x'.repeat(200_000),
    })
    expect(huge.status).toBe(401)
    const tooLarge = await admin.call('POST', '/admin/v1/keys', {
      body: { name: 'x', tier: 'service', metadata: { pad: 'x'.repeat(2000) } },
    })
    expect(tooLarge.status).toBe(413)
    expect(tooLarge.json.error).toMatchObject({ code: 'request_too_large', type: 'invalid_request_error' })
  })

  it('locks an address out after 10 failures in 10 minutes: 429 with Retry-After, even for the right token', async () => {
    const admin = await start()
    for (let i = 0; i < 10; i++) {
      expect((await admin.call('GET', '/admin/v1/keys', { token: `wrong-${i}` })).status).toBe(401)
    }
    const locked = await admin.call('GET', '/admin/v1/keys', { token: 'wrong-again' })
    expect(locked.status).toBe(429)
    expect(locked.json.error).toMatchObject({ type: 'rate_limit_error', code: 'too_many_auth_failures' })
    const seconds = Number(locked.headers.get('retry-after'))
    expect(Number.isInteger(seconds) && seconds >= 1 && seconds <= 600).toBe(true)
    expect(Number(locked.headers.get('retry-after-ms'))).toBeGreaterThan(0)
    // A guesser learns nothing more: the right token from that address is refused too…
    expect((await admin.call('GET', '/admin/v1/keys')).status).toBe(429)
    // …while another address is not locked out.
    expect((await admin.call('GET', '/admin/v1/keys', { dispatcher: otherAddress })).status).toBe(200)
    expect((await admin.call('GET', '/admin/v1/keys', { token: 'x', dispatcher: otherAddress })).status).toBe(
      401,
    )
  })

  it('admits exactly 10 wrong guesses when 60 arrive at once on separate connections', async () => {
    const admin = await start()
    const answers = await Promise.all(
      Array.from({ length: 60 }, (_, i) => admin.call('GET', '/admin/v1/keys', { token: `guess-${i}` })),
    )
    const statuses = answers.map((a) => a.status)
    expect(statuses.filter((s) => s === 401)).toHaveLength(10)
    expect(statuses.filter((s) => s === 429)).toHaveLength(50)
  })

  it('counts missing tokens too, with the limit and window given', async () => {
    const admin = await start({ failedAuth: { limit: 3, windowMs: 60_000 } })
    for (let i = 0; i < 3; i++)
      expect((await admin.call('GET', '/admin/v1/status', { token: null })).status).toBe(401)
    expect((await admin.call('GET', '/admin/v1/status', { token: null })).status).toBe(429)
  })

  it('uses an injected failed-auth hook and client address', async () => {
    const calls: string[] = []
    const admin = await start({
      clientIp: (request) => `test:${request.headers['x-test-client'] ?? 'none'}`,
      failedAuth: {
        onAuthFailure(ip) {
          calls.push(ip)
          return { lockedOut: calls.filter((c) => c === ip).length > 2, retryAfterMs: 1500 }
        },
      },
    })
    const as = (client: string, token?: string | null) =>
      admin.call('GET', '/admin/v1/keys', { token, headers: { 'x-test-client': client } })
    expect((await as('a', 'bad')).status).toBe(401)
    expect((await as('a', 'bad')).status).toBe(401)
    const third = await as('a', 'bad')
    expect(third.status).toBe(429)
    expect(third.headers.get('retry-after')).toBe('2')
    expect(third.headers.get('retry-after-ms')).toBe('1500')
    expect((await as('b', 'bad')).status).toBe(401)
    expect((await as('a')).status).toBe(200) // no isLockedOut hook: the right token passes
    expect(calls).toEqual(['test:a', 'test:a', 'test:a', 'test:b'])
  })

  it('accepts the token configured only by its SHA-256 hash', async () => {
    const { token, tokenHash } = generateAdminToken()
    expect(tokenHash).toBe(hashAdminToken(token))
    const server = await startAdminServer({ control, auth: { tokenHash }, logger: false })
    started.push(server)
    expect((await callAdmin(server.url, token, 'GET', '/admin/v1/keys')).status).toBe(200)
    expect((await callAdmin(server.url, tokenHash, 'GET', '/admin/v1/keys')).status).toBe(401)
    const upper = await startAdminServer({
      control,
      auth: { tokenHash: tokenHash.toUpperCase() },
      logger: false,
    })
    started.push(upper)
    expect((await callAdmin(upper.url, token, 'GET', '/admin/v1/keys')).status).toBe(200)
  })

  it('refuses a weak or malformed token configuration at start, without printing it', async () => {
    const attempts = [
      { auth: { token: 'short-token' }, message: /at least 16 characters/ },
      { auth: { tokenHash: 'abc123' }, message: /64 hex digits/ },
      { auth: { token: 'a-long-enough-token-here', tokenHash: 'a'.repeat(64) }, message: /not both/ },
    ]
    for (const { auth, message } of attempts) {
      const error = await startAdminServer({ control, auth, logger: false }).then(
        () => undefined,
        (e: Error) => e,
      )
      expect(error?.message).toMatch(message)
      for (const value of Object.values(auth)) expect(error?.message).not.toContain(value)
    }
  })

  it('reads the token from SLUICE_ADMIN_TOKEN first, else the config hash', () => {
    const hash = 'b'.repeat(64)
    expect(adminAuthFrom({ SLUICE_ADMIN_TOKEN: 'tok-from-the-env-xyz' }, { tokenHash: hash })).toEqual({
      token: 'tok-from-the-env-xyz',
    })
    expect(adminAuthFrom({ SLUICE_ADMIN_TOKEN: '' }, { tokenHash: hash })).toEqual({ tokenHash: hash })
    expect(adminAuthFrom({}, undefined)).toBeUndefined()
  })

  it('never writes the token (right or wrong) to its logs, even at trace level and on errors', async () => {
    const logs = captureLogs()
    const admin = await start({ logger: { level: 'trace', destination: logs.destination } })
    const wrong = `${admin.token.slice(0, -4)}ABCD`
    await admin.call('GET', '/admin/v1/keys')
    await admin.call('GET', '/admin/v1/keys', { token: wrong })
    await admin.call('GET', `/admin/v1/keys?token=${admin.token}`)
    await admin.call('POST', '/admin/v1/keys', { rawBody: `{"name": "${admin.token}"` })
    await admin.call('GET', '/admin/v1/nothing', { headers: { 'x-sluice-actor': admin.token } })
    await admin.call('POST', '/admin/v1/keys', {
      body: { name: 'x', tier: 'service' },
      headers: { 'x-sluice-actor': admin.token },
    })
    // An internal error: the database closed under the API (answers 500/503, logged).
    const closing = await openControl({ url: harness.url() })
    const broken = await start({
      control: closing,
      logger: { level: 'trace', destination: logs.destination },
    })
    await closing.close()
    const failed = await callAdmin(broken.server.url, broken.token, 'GET', '/admin/v1/keys')
    expect(failed.status).toBeGreaterThanOrEqual(500)
    expect(failed.json.error.type).toBe('server_error')
    await new Promise((r) => setTimeout(r, 50))
    const text = logs.text()
    expect(text).toContain('incoming request')
    expect(text).toContain('admin API request failed')
    expect(text).not.toContain(admin.token)
    expect(text).not.toContain(wrong)
    expect(text).not.toContain(broken.token)
    expect(text).not.toContain(admin.token.slice('sk-sluice-admin-'.length))
  })
})
