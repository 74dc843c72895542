/**
 * Installs sluice as a user would: packs the tarball from a fresh build, installs it in an empty
 * folder with ioredis 6 and the web frameworks from the npm registry, then runs a small app there
 * (fixtures/app.mjs) with all four adapters and the README's engine example on a real redis-server.
 * Slow (a build, a pack and an npm install): it lives in a file of its own.
 *
 * SLUICE_PACKAGE_ROOT packs another checkout instead of this one (to run the test against an
 * older version).
 */
import { execFile } from 'node:child_process'
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type RedisServer, startRedis } from '../helpers/redis-server.js'

const run = promisify(execFile)
const HERE = fileURLToPath(new URL('.', import.meta.url))
const REPO = fileURLToPath(new URL('../..', import.meta.url))
const ROOT = process.env.SLUICE_PACKAGE_ROOT ?? REPO
const INSTALL_MS = 300_000

/** The first ```ts block after "## The engine" in the README, pointed at the test's Redis. */
function engineExample(): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
  const section = readme.slice(readme.indexOf('## The engine'))
  const code = /```ts\n([\s\S]*?)```/.exec(section)?.[1]
  if (code === undefined) throw new Error('no engine example in the README')
  if (!code.includes('new Redis()')) throw new Error('the engine example no longer makes `new Redis()`')
  return `${code.replace('new Redis()', 'new Redis(process.env.REDIS_URL)')}\nexport { limiter, d, r }\n`
}

/**
 * The dashboard plugin of the installed package in a user's Fastify app: the page, then the script
 * it names. (The control plane has no package export yet: its module is imported by path.)
 */
const DASHBOARD_APP = `
import Fastify from 'fastify'
const { dashboardRoutes } = await import('./node_modules/sluice/dist/control/admin/index.js')
const app = Fastify()
await app.register(dashboardRoutes)
const page = await app.inject({ url: '/dashboard/' })
const src = /src="\\.\\/(assets\\/[^"]+\\.js)"/.exec(page.body)?.[1]
const script = await app.inject({ url: '/dashboard/' + src })
console.log(JSON.stringify({
  page: page.statusCode,
  pageType: page.headers['content-type'],
  csp: page.headers['content-security-policy'],
  script: script.statusCode,
  scriptType: script.headers['content-type'],
  scriptCache: script.headers['cache-control'],
}))
await app.close()
`

interface Hammered {
  statuses: number[]
  first: Record<string, string>
  denied: Record<string, string> | undefined
}

describe('the packed tarball, installed in a clean folder', () => {
  let work: string
  let tarball: string
  let app: string
  let server: RedisServer
  let admin: Redis

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'sluice-package-'))
    // Build and pack a copy, so that this checkout's dist/ is never rebuilt under other tests.
    const copy = join(work, 'sluice')
    mkdirSync(copy)
    for (const entry of [
      'package.json',
      'package-lock.json',
      'README.md',
      'tsconfig.json',
      'scripts',
      'src',
      'dashboard',
    ]) {
      cpSync(join(ROOT, entry), join(copy, entry), { recursive: true })
    }
    symlinkSync(join(ROOT, 'node_modules'), join(copy, 'node_modules'), 'dir')
    await run(process.execPath, ['scripts/build.mjs'], { cwd: copy, timeout: INSTALL_MS })
    const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', work], {
      cwd: copy,
      timeout: INSTALL_MS,
    })
    tarball = join(work, (JSON.parse(stdout) as { filename: string }[])[0]!.filename)

    app = join(work, 'app')
    mkdirSync(app)
    writeFileSync(
      join(app, 'package.json'),
      JSON.stringify({ name: 'sluice-user-app', private: true, type: 'module' }),
    )
    await run(
      'npm',
      [
        'install',
        '--no-audit',
        '--no-fund',
        '--loglevel=error',
        tarball,
        'ioredis@6',
        'ioredis5@npm:ioredis@5',
        'express',
        'fastify',
        'hono',
        '@hono/node-server',
      ],
      { cwd: app, timeout: INSTALL_MS },
    )
    cpSync(join(HERE, 'fixtures/app.mjs'), join(app, 'app.mjs'))
    writeFileSync(join(app, 'engine.mjs'), engineExample())
    server = await startRedis()
    admin = new Redis(server.url)
  }, INSTALL_MS * 3)

  afterAll(async () => {
    admin?.disconnect()
    await server?.stop()
    if (work) rmSync(work, { recursive: true, force: true })
  })

  it('holds the built files every export names, and no sources or tests', async () => {
    const { stdout } = await run('tar', ['-tzf', tarball])
    const files = new Set(stdout.split('\n').filter(Boolean))
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
      exports: Record<string, string | Record<string, string>>
      bin: Record<string, string>
    }
    for (const [entry, target] of Object.entries(pkg.exports)) {
      const paths = typeof target === 'string' ? [target] : Object.values(target)
      for (const path of paths)
        expect(files, `${entry} → ${path}`).toContain(`package/${path.replace(/^\.\//, '')}`)
    }
    for (const bin of Object.values(pkg.bin)) expect(files).toContain(`package/${bin}`)
    expect(files).toContain('package/dist/store/redis/apply.lua')
    // The dashboard, built: its page and its hashed script and stylesheet, no sources.
    expect(files).toContain('package/dist/dashboard/index.html')
    expect(
      [...files].filter((f) => /^package\/dist\/dashboard\/assets\/index-[\w-]+\.js$/.test(f)),
    ).toHaveLength(1)
    expect(
      [...files].filter((f) => /^package\/dist\/dashboard\/assets\/index-[\w-]+\.css$/.test(f)),
    ).toHaveLength(1)
    expect([...files].filter((f) => /^package\/dashboard\//.test(f))).toEqual([])
    expect([...files].filter((f) => /^package\/(src|test|bench)\//.test(f))).toEqual([])
    // npm installed the user's ioredis 6 (sluice's own copy may be the same one or another).
    const installed = JSON.parse(readFileSync(join(app, 'node_modules/ioredis/package.json'), 'utf8'))
    expect(installed.version).toMatch(/^6\./)
    expect(existsSync(join(app, 'node_modules/sluice/dist/index.js'))).toBe(true)
  })

  it('runs the four adapters and the README engine example with the user’s ioredis 6 client', async () => {
    const { stdout } = await run(process.execPath, ['app.mjs'], {
      cwd: app,
      env: { ...process.env, REDIS_URL: server.url },
      timeout: 120_000,
    })
    const results = JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, unknown>

    for (const adapter of ['express', 'fastify', 'hono', 'node']) {
      const h = results[adapter] as Hammered
      expect(h.statuses[0], adapter).toBe(200)
      expect(h.first['ratelimit-policy'], adapter).toBeTruthy()
      expect(h.first.ratelimit, adapter).toBeTruthy()
      // The default anonymous tier runs out, and the client is told when to come back.
      expect(h.statuses.at(-1), adapter).toBe(429)
      expect(h.statuses.filter((s) => s === 200).length, adapter).toBe(h.statuses.length - 1)
      expect(Number(h.denied!['retry-after']), adapter).toBeGreaterThan(0)
    }
    expect(results.nodeWithKey).toEqual({ status: 200, body: 'hello' })
    expect(results.nodeWrongKey).toBe(401)
    // The Express app counted in Redis, under its prefix.
    expect((await admin.keys('app-express:*')).length).toBeGreaterThan(0)

    const engine = results.engine as {
      consumed: { allowed: boolean; verified: boolean }
      reserved: { allowed: boolean; verified: boolean }
      remaining: Record<string, number>
      stateKey: string
    }
    expect(engine.consumed).toEqual({ allowed: true, verified: true })
    expect(engine.reserved).toEqual({ allowed: true, verified: true })
    // 1 request consumed, 1 reserved; 1,500 tokens consumed, then 1,500 reserved and settled at 2,310.
    expect(engine.remaining.burst).toBeGreaterThanOrEqual(98)
    expect(engine.remaining.hourly).toBe(198)
    expect(engine.remaining.tokens).toBeGreaterThanOrEqual(100_000 - 1_500 - 2_310)
    expect(engine.remaining.tokens).toBeLessThan(100_000 - 1_500 - 2_310 + 1_000)
    expect(engine.remaining.inflight).toBe(5)
    expect(await admin.exists(engine.stateKey)).toBe(1)

    expect(results.ioredis5).toEqual([
      [true, true],
      [true, true],
      [false, true],
    ])
    expect(results.refused).toMatch(/^SluiceInputError: RedisStore client must be/)
    expect(results.refused).not.toContain('hunter2')
  })

  it('serves the built dashboard from the installed package', async () => {
    writeFileSync(join(app, 'dashboard.mjs'), DASHBOARD_APP)
    const { stdout } = await run(process.execPath, ['dashboard.mjs'], { cwd: app, timeout: 60_000 })
    const served = JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, unknown>
    expect(served).toMatchObject({
      page: 200,
      pageType: 'text/html; charset=utf-8',
      script: 200,
      scriptType: 'text/javascript; charset=utf-8',
      scriptCache: 'public, max-age=31536000, immutable',
    })
    expect(served.csp).toMatch(/script-src 'self'/)
  })
})
