/**
 * What every browser test stands on: the admin API and the dashboard in one Fastify app (as the
 * gateway will mount them: one `adminConsole` register) over a real SQLite file, a real limiter
 * for the live bars, an events feed connected to a real HTTP core, and Debian's Chromium driven by
 * playwright-core. Each page records its console errors, page errors and every URL it loads.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Fastify, { type FastifyInstance } from 'fastify'
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core'
import {
  AdminEventFeed,
  adminConsole,
  connectSluiceEvents,
  generateAdminToken,
  LatencyRecorder,
} from '../../src/control/admin/index.js'
import { type Control, type LedgerEntry, openControl } from '../../src/control/index.js'
import { slidingWindow, tokenBucket } from '../../src/core/limits.js'
import { Sluice } from '../../src/http/index.js'
import { type Decision, Limiter } from '../../src/limiter.js'
import { MemoryDetectorStore } from '../../src/store/detectors/memory.js'
import { MemoryStore } from '../../src/store/memory.js'
import { dashboardBuild } from './build.js'

export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]

export const TIERS = ['anonymous', 'authenticated', 'premium', 'service']

export interface Watched {
  page: Page
  context: BrowserContext
  /** Console errors and uncaught page errors, as text. */
  problems: string[]
  /** Every URL the page requested. */
  requests: string[]
}

export interface DashboardFixture {
  url: string
  token: string
  control: Control
  feed: AdminEventFeed
  limiter: Limiter
  /** An HTTP core whose events (alerts, blocks, webhook failures) feed the dashboard. */
  sluice: Sluice
  /** The webhook receiver of that core: `status` is what it answers (default 204). */
  hook: { url: string; status: number; received: number }
  latency: LatencyRecorder
  /** The abuse detectors' store the detections page reads (log records into it to show them). */
  detectors: MemoryDetectorStore
  browser: Browser
  open(path?: string, options?: OpenOptions): Promise<Watched>
  /** Appends ledger rows as the gateway will, and waits until they are written. */
  record(rows: LedgerEntry[]): Promise<void>
  close(): Promise<void>
}

export interface OpenOptions {
  width?: number
  height?: number
  signedIn?: boolean
}

async function resolveChromium(): Promise<string> {
  const configured = process.env.SLUICE_TEST_CHROMIUM
  if (configured) return configured
  const { execFileSync } = await import('node:child_process')
  return execFileSync('sh', ['-c', 'command -v chromium'], { encoding: 'utf8' }).trim()
}

/** Debian's Chromium with the flags of the issue. */
export async function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: await resolveChromium(), args: CHROMIUM_FLAGS, headless: true })
}

/**
 * Opens `url` in a new context of `browser` (kept in `contexts` to close), recording console errors,
 * page errors and requests; with `token`, the tab starts signed in (the token where the sign-in
 * form leaves it: this tab's sessionStorage).
 */
export async function openPage(
  browser: Browser,
  contexts: BrowserContext[],
  url: string,
  token: string | undefined,
  o: { width?: number; height?: number } = {},
): Promise<Watched> {
  const context = await browser.newContext({
    viewport: { width: o.width ?? 1280, height: o.height ?? 800 },
    permissions: ['clipboard-read', 'clipboard-write'],
    reducedMotion: 'reduce',
  })
  contexts.push(context)
  const page = await context.newPage()
  const problems: string[] = []
  const requests: string[] = []
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console: ${message.text()} (${message.location().url})`)
  })
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`))
  page.on('request', (request) => requests.push(request.url()))
  if (token !== undefined) {
    await context.addInitScript({
      content: `sessionStorage.setItem('sluice.adminToken', ${JSON.stringify(token)})`,
    })
  }
  await page.goto(url)
  return { page, context, problems, requests }
}

export async function startDashboard(options: { adminToken?: boolean } = {}): Promise<DashboardFixture> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-dashboard-test-'))
  const root = await dashboardBuild()
  const control = await openControl({ url: join(dir, 'sluice.db'), ledger: { intervalMs: 20 } })
  const { token } = generateAdminToken()
  const feed = new AdminEventFeed()
  const latency = new LatencyRecorder()
  const detectors = new MemoryDetectorStore()
  const store = new MemoryStore()
  const limiter = new Limiter({
    store,
    policy: 'service',
    limits: {
      hourly: slidingWindow({ limit: 100, windowMs: 3_600_000 }),
      tokens: tokenBucket({ capacity: 10_000, refillPerSecond: 10_000 / 3600, unit: 'tokens' }),
    },
    block: { after: 3, withinMs: 60_000 },
  })
  const hook = { url: '', status: 204, received: 0 }
  const hookServer = createServer((req, res) => {
    req.resume()
    req.on('end', () => {
      hook.received++
      res.statusCode = hook.status
      res.end()
    })
  })
  await new Promise<void>((resolve) => hookServer.listen(0, '127.0.0.1', resolve))
  // A secret in the path, as chat services' hooks carry: the dashboard must show the origin only.
  hook.url = `http://127.0.0.1:${(hookServer.address() as AddressInfo).port}/hooks/T000/very-secret-part`
  const sluice = new Sluice({
    logger: false,
    store: new MemoryStore(),
    tiers: { anonymous: { scope: 'ip', limits: { minute: slidingWindow({ limit: 5, windowMs: 60_000 }) } } },
    alertAt: 0.8,
    webhook: { url: hook.url, retries: 1, backoffMs: 10, events: ['alert', 'block'] },
  })
  const disconnect = connectSluiceEvents(feed, sluice)
  const app: FastifyInstance = Fastify({ logger: false })
  await app.register(adminConsole, {
    control,
    auth: options.adminToken === false ? undefined : { token },
    tiers: TIERS,
    events: feed,
    latency: () => latency.snapshot(),
    storeStatus: () => ({ status: 'ready', store: 'memory' }),
    subjects: {
      async inspect(subject): Promise<Record<string, Decision>> {
        return subject.startsWith('key:') ? { service: await limiter.peek(subject, { requests: 0 }) } : {}
      },
      async unblock(subject) {
        await limiter.unblock(subject)
      },
    },
    detections: () => detectors,
    dashboard: { root },
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  const browser = await launchChromium()
  const contexts: BrowserContext[] = []

  return {
    url,
    token,
    control,
    feed,
    limiter,
    sluice,
    hook,
    latency,
    detectors,
    browser,
    open(path = '/dashboard/', o = {}) {
      return openPage(browser, contexts, `${url}${path}`, o.signedIn ? token : undefined, o)
    },
    async record(rows) {
      for (const row of rows) control.ledger.append(row)
      await control.ledger.flush()
    },
    async close() {
      for (const c of contexts) await c.close().catch(() => {})
      await browser.close()
      disconnect()
      await sluice.flush()
      await new Promise((resolve) => hookServer.close(resolve))
      await app.close()
      await store.close()
      await detectors.close()
      await control.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** Rows as the gateway writes them for a key: served calls, 429s naming the limit, and 401s. */
export function served(keyId: string, n: number, extra: Partial<LedgerEntry> = {}): LedgerEntry[] {
  return Array.from({ length: n }, (_, i) => ({
    keyId,
    tier: 'service',
    subject: `key:${keyId}`,
    model: 'gpt-4o-mini',
    route: 'chat',
    status: 200,
    outcome: 'ok',
    source: 'upstream',
    promptTokens: 120 + i,
    completionTokens: 40,
    usd: 0.0004,
    latencyMs: 2 + (i % 5),
    ...extra,
  }))
}

export function refused(
  keyId: string,
  n: number,
  reason: string,
  extra: Partial<LedgerEntry> = {},
): LedgerEntry[] {
  return Array.from({ length: n }, () => ({
    keyId,
    tier: 'service',
    subject: `key:${keyId}`,
    model: 'gpt-4o-mini',
    route: 'chat',
    status: 429,
    outcome: 'rate_limited',
    reason,
    source: 'none',
    latencyMs: 1,
    ...extra,
  }))
}

export function unauthenticated(n: number): LedgerEntry[] {
  return Array.from({ length: n }, () => ({
    subject: 'ip:192.0.2.9',
    route: 'chat',
    status: 401,
    outcome: 'unauthenticated',
    reason: 'invalid_api_key',
    latencyMs: 1,
  }))
}

/** The same origin as the dashboard, for every URL a page loaded. */
export function foreign(requests: string[], base: string): string[] {
  const origin = new URL(base).origin
  return requests.filter((r) => new URL(r).origin !== origin)
}

export async function signIn(page: Page, token: string): Promise<void> {
  await page.getByLabel('Admin token').fill(token)
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor()
}
