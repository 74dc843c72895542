/**
 * Serving the dashboard's files (no browser here: test/dashboard/ has the browser tests): content
 * types, caching, the Content-Security-Policy, compression, conditional requests, a missing build,
 * and that nothing outside the build folder can ever be read — traversal in every spelling, a
 * symbolic link inside the build, dot files.
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { request } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { brotliDecompressSync, gunzipSync } from 'node:zlib'
import Fastify, { type FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DASHBOARD_CSP, dashboardRoutes } from '../src/control/admin/index.js'

interface Raw {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: Buffer
}

/** A request with the path sent exactly as written (fetch would normalise `..` and `%2e`). */
function raw(port: number, path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, headers }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () =>
        resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }),
      )
    })
    req.on('error', reject)
    req.end()
  })
}

const SCRIPT = `console.log(${JSON.stringify('x'.repeat(4000))})\n`

describe('the dashboard plugin', () => {
  let dir: string
  let outside: string
  let app: FastifyInstance
  let missing: FastifyInstance
  let port: number
  let missingPort: number

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sluice-dash-'))
    const build = join(dir, 'build')
    outside = join(dir, 'secret.txt')
    mkdirSync(join(build, 'assets'), { recursive: true })
    writeFileSync(
      join(build, 'index.html'),
      '<!doctype html><html><head><title>t</title><script type="module" src="./assets/index-AbCd1234.js"></script></head><body></body></html>',
    )
    writeFileSync(join(build, 'assets/index-AbCd1234.js'), SCRIPT)
    writeFileSync(join(build, 'assets/style-Zz9_8-7y.css'), 'body{color:red}')
    writeFileSync(join(build, 'favicon.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>')
    writeFileSync(join(build, '.env'), 'SECRET=1')
    writeFileSync(outside, 'outside the build')
    symlinkSync(outside, join(build, 'assets/linked.txt'))
    symlinkSync(dir, join(build, 'up'))

    app = Fastify()
    await app.register(dashboardRoutes, { root: build, adminApi: 'off' })
    await app.listen({ host: '127.0.0.1', port: 0 })
    port = (app.server.address() as AddressInfo).port
    missing = Fastify()
    await missing.register(dashboardRoutes, { root: join(dir, 'nothing-here') })
    await missing.listen({ host: '127.0.0.1', port: 0 })
    missingPort = (missing.server.address() as AddressInfo).port
  })
  afterAll(async () => {
    await app?.close()
    await missing?.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it('serves the page (never stored) with a strict CSP, and what the server knows of the admin API', async () => {
    const page = await raw(port, '/dashboard/')
    expect(page.status).toBe(200)
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8')
    expect(page.headers['cache-control']).toBe('no-store')
    expect(page.headers['content-security-policy']).toBe(DASHBOARD_CSP)
    expect(DASHBOARD_CSP).toMatch(/script-src 'self';/)
    expect(DASHBOARD_CSP).toMatch(/connect-src 'self';/)
    expect(DASHBOARD_CSP).not.toMatch(/unsafe-inline|unsafe-eval|\*/)
    expect(page.headers['x-content-type-options']).toBe('nosniff')
    expect(page.headers['x-frame-options']).toBe('DENY')
    expect(page.headers['referrer-policy']).toBe('no-referrer')
    expect(page.body.toString()).toContain('<meta name="sluice-admin-api" content="off"></head>')
    expect((await raw(port, '/dashboard/index.html')).body).toEqual(page.body)
    const bare = await raw(port, '/dashboard')
    expect(bare.status).toBe(308)
    expect(bare.headers.location).toBe('dashboard/')
  })

  it('serves hashed assets as immutable, other files revalidated, each with its type', async () => {
    const js = await raw(port, '/dashboard/assets/index-AbCd1234.js')
    expect(js.status).toBe(200)
    expect(js.headers['content-type']).toBe('text/javascript; charset=utf-8')
    expect(js.headers['cache-control']).toBe('public, max-age=31536000, immutable')
    expect(js.body.toString()).toBe(SCRIPT)
    const css = await raw(port, '/dashboard/assets/style-Zz9_8-7y.css?v=1')
    expect(css.headers['content-type']).toBe('text/css; charset=utf-8')
    expect(css.headers['cache-control']).toMatch(/immutable/)
    const icon = await raw(port, '/dashboard/favicon.svg')
    expect(icon.headers['content-type']).toBe('image/svg+xml')
    expect(icon.headers['cache-control']).toBe('no-cache')
    const head = await raw(port, '/dashboard/assets/index-AbCd1234.js', {}, 'HEAD')
    expect(head.status).toBe(200)
    expect(head.body.length).toBe(0)
  })

  it('compresses text by Accept-Encoding and answers 304 to a matching ETag', async () => {
    const path = '/dashboard/assets/index-AbCd1234.js'
    const br = await raw(port, path, { 'accept-encoding': 'gzip, deflate, br' })
    expect(br.headers['content-encoding']).toBe('br')
    expect(br.headers.vary).toBe('accept-encoding')
    expect(brotliDecompressSync(br.body).toString()).toBe(SCRIPT)
    expect(br.body.length).toBeLessThan(SCRIPT.length / 10)
    const gz = await raw(port, path, { 'accept-encoding': 'gzip, br;q=0' })
    expect(gz.headers['content-encoding']).toBe('gzip')
    expect(gunzipSync(gz.body).toString()).toBe(SCRIPT)
    const plain = await raw(port, path, { 'accept-encoding': 'identity' })
    expect(plain.headers['content-encoding']).toBeUndefined()
    expect(new Set([br.headers.etag, gz.headers.etag, plain.headers.etag]).size).toBe(3)
    for (const etag of [plain.headers.etag, br.headers.etag] as string[]) {
      const again = await raw(port, path, { 'if-none-match': etag, 'accept-encoding': 'br' })
      expect(again.status).toBe(304)
      expect(again.body.length).toBe(0)
    }
    expect((await raw(port, path, { 'if-none-match': '"something-else"' })).status).toBe(200)
  })

  it('never serves a file from outside the build, however the path is spelled', async () => {
    const attempts = [
      '/dashboard/../secret.txt',
      '/dashboard/..%2fsecret.txt',
      '/dashboard/%2e%2e/secret.txt',
      '/dashboard/%2e%2e%2fsecret.txt',
      '/dashboard/%252e%252e%252fsecret.txt',
      '/dashboard/assets/../../secret.txt',
      '/dashboard/assets/..%5c..%5csecret.txt',
      '/dashboard/..\\secret.txt',
      `/dashboard/${encodeURIComponent(outside)}`,
      `/dashboard//${outside.slice(1)}`,
      '/dashboard/assets/linked.txt',
      '/dashboard/up/secret.txt',
      '/dashboard/.env',
      '/dashboard/index.html%00.js',
      '/dashboard/assets/index-AbCd1234.js/..',
      '/dashboard/ASSETS/index-AbCd1234.js',
    ]
    for (const path of attempts) {
      const answer = await raw(port, path)
      expect(answer.status, path).toBeGreaterThanOrEqual(400)
      expect(answer.body.toString(), path).not.toContain('outside the build')
      expect(answer.body.toString(), path).not.toContain('SECRET')
      // Even the refusals carry the policy.
      if (answer.status === 404) expect(answer.headers['content-security-policy'], path).toBe(DASHBOARD_CSP)
    }
  })

  it('answers other methods with 405, before reading a body', async () => {
    for (const method of ['POST', 'PUT', 'DELETE']) {
      const answer = await raw(port, '/dashboard/', { 'content-type': 'application/json' }, method)
      expect(answer.status, method).toBe(405)
      expect(answer.headers.allow).toBe('GET, HEAD')
    }
  })

  it('says how to build the dashboard when there is no build', async () => {
    const answer = await raw(missingPort, '/dashboard/')
    expect(answer.status).toBe(503)
    expect(answer.headers['content-type']).toBe('text/html; charset=utf-8')
    expect(answer.headers['content-security-policy']).toBe(DASHBOARD_CSP)
    expect(answer.body.toString()).toContain('npm run build')
    expect((await raw(missingPort, '/dashboard/assets/x.js')).status).toBe(503)
  })

  it('refuses to be registered under a prefix', async () => {
    const other = Fastify()
    await expect(
      other.register(async (scope) => scope.register(dashboardRoutes), { prefix: '/ops' }).ready(),
    ).rejects.toThrow(/root of the app/)
    await other.close()
  })
})
