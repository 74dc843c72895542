/**
 * The dashboard end to end, in Chromium, against `sluice serve` itself (started in this process over
 * the mock upstream, a SQLite control database in a temp folder, an admin token set): sign in (a
 * wrong token refused), create a key in the UI and read its secret from the page, spend it with the
 * official `openai` client until its tier's limit refuses it, watch the usage and the refusal arrive
 * in the overview and on the key's page without a reload, revoke it in the UI and see the next call
 * answered 401. Also makes the screenshots of docs/ (SLUICE_DASHBOARD_SCREENSHOTS=1) from this run.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import OpenAI, { AuthenticationError, RateLimitError } from 'openai'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DASHBOARD_CSP } from '../../src/control/admin/index.js'
import type { LedgerEntry } from '../../src/control/index.js'
import { type Gateway, startGateway } from '../../src/gateway/index.js'
import { clearOfWindowEdge, HOUR, MINUTE } from '../helpers/window-edge.js'
import { dashboardBuild } from './build.js'
import { foreign, launchChromium, type OpenOptions, openPage, signIn, type Watched } from './harness.js'

/** How far from a full hour a test that spends a fixed window and reads its meter starts. */
const EDGE_MARGIN = 40_000
const DOCS = fileURLToPath(new URL('../../docs/', import.meta.url))
const TOKEN = 'sluice-e2e-admin-token-0123456789abcdef'
/** The trial tier: three calls an hour per key, so that the fourth is refused. */
const CALLS = 3
const messages = [{ role: 'user' as const, content: 'Tell me about rivers and gates.' }]

/** The text of the stat tile labelled `label`. */
const stat = (page: Page, label: string) =>
  page
    .locator('.stat')
    .filter({ has: page.getByText(label, { exact: true }) })
    .locator('.stat-value')

/** Marks the page, to prove later that it was never reloaded. */
const mark = (page: Page) => page.evaluate('window.__notReloaded = true')
const stillSame = (page: Page) => page.evaluate('window.__notReloaded === true')

// Each test may first wait out a full hour (clearOfWindowEdge) on top of its own minute.
describe('the dashboard over sluice serve', { timeout: 60_000 + EDGE_MARGIN }, () => {
  let gateway: Gateway
  let browser: Browser
  let dir: string
  let shots: string
  const contexts: BrowserContext[] = []
  const open = (path: string, o: OpenOptions = {}): Promise<Watched> =>
    openPage(browser, contexts, `${gateway.url}${path}`, o.signedIn ? TOKEN : undefined, o)

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sluice-dashboard-gateway-'))
    shots =
      process.env.SLUICE_DASHBOARD_SCREENSHOTS === '1' ? DOCS : mkdtempSync(join(tmpdir(), 'sluice-shots-'))
    gateway = await startGateway(
      {
        port: 0,
        database: { url: join(dir, 'sluice.db'), keyTtl: '1h' },
        ledger: { path: false },
        snapshot: false,
        tiers: {
          trial: {
            scope: 'key',
            limits: {
              calls: { kind: 'fixedWindow', limit: CALLS, window: '1h' },
              tokens: { kind: 'fixedWindow', unit: 'tokens', limit: 20_000, window: '1h' },
              dollars: { kind: 'fixedWindow', unit: 'usd', limit: 5, window: '1d' },
            },
            block: false,
          },
        },
      },
      { logger: false, env: { SLUICE_ADMIN_TOKEN: TOKEN }, dashboardRoot: await dashboardBuild() },
    )
    await gateway.control!.control.teams.create(
      { id: 'research', name: 'Research', budgets: { usd: { limit: 20, period: 'month' } } },
      { actor: 'test:setup' },
    )
    browser = await launchChromium()
  }, 120_000)
  afterAll(async () => {
    for (const c of contexts) await c.close().catch(() => {})
    await browser?.close()
    await gateway?.close()
    if (dir) rmSync(dir, { recursive: true, force: true })
    if (shots && shots !== DOCS) rmSync(shots, { recursive: true, force: true })
  })

  it('refuses a wrong admin token, in the page and at the API', async () => {
    const { page, problems, requests } = await open('/dashboard/')
    await page.getByLabel('Admin token').fill('sluice-e2e-admin-token-but-not-this-one')
    await page.getByRole('button', { name: 'Sign in' }).click()
    await expect(page.getByRole('alert').textContent()).resolves.toBe('That admin token is wrong.')
    expect(await page.evaluate('sessionStorage.length')).toBe(0)
    expect(problems).toEqual([expect.stringMatching(/status of 401.*\/admin\/v1\/status/)])
    problems.length = 0
    const api = await fetch(`${gateway.url}/admin/v1/keys`, { headers: { authorization: 'Bearer nope' } })
    expect(api.status).toBe(401)
    await signIn(page, TOKEN)
    expect(foreign(requests, gateway.url)).toEqual([])
    expect(problems).toEqual([])
  })

  it('serves the page under its CSP, with JavaScript only from the gateway', async () => {
    const { page, problems, requests } = await open('/dashboard/', { signedIn: true })
    await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor()
    const response = await page.request.get(`${gateway.url}/dashboard/`)
    expect(response.headers()['content-security-policy']).toBe(DASHBOARD_CSP)
    const scripts = (await page.evaluate('[...document.scripts].map((s) => s.src)')) as string[]
    expect(scripts.length).toBeGreaterThan(0)
    for (const src of scripts) expect(new URL(src).origin).toBe(gateway.url)
    expect(foreign(requests, gateway.url)).toEqual([])
    for (const r of requests) expect(new URL(r).pathname).toMatch(/^\/(dashboard\/|admin\/v1\/)/)
    expect(problems).toEqual([])
  })

  it('creates a key in the UI, spends it with openai until refused, shows it live, revokes it', async () => {
    // The overview in a tab of its own, left open: it must follow without a reload.
    const overview = await open('/dashboard/', { signedIn: true })
    await overview.page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor()
    await expect.poll(() => stat(overview.page, 'Requests').textContent()).toBe('0')
    await mark(overview.page)

    const { page, problems, requests } = await open('/dashboard/')
    await signIn(page, TOKEN)
    await page.getByRole('link', { name: 'Keys' }).click()
    await page.getByRole('heading', { level: 1, name: 'Keys' }).waitFor()
    await page.getByRole('button', { name: 'Create key' }).click()
    const dialog = page.getByRole('dialog', { name: 'Create a key' })
    await dialog.getByLabel('Name (required)').fill('ci-bot')
    await dialog.getByLabel('Tier').selectOption('trial')
    await dialog.getByLabel('Team').selectOption('research')
    await dialog.getByLabel('Dollar budget (USD)').fill('1')
    await dialog.getByLabel('Dollar budget period').selectOption('day')
    await dialog.getByRole('button', { name: 'Create key' }).click()
    const shown = page.getByRole('dialog', { name: 'Key ci-bot created' })
    const secret = await shown.getByLabel('API key').inputValue()
    expect(secret).toMatch(/^sk-sluice-[a-z2-7]{10}-/)
    await shown.getByRole('button', { name: 'I have stored it' }).click()
    await page.getByRole('heading', { level: 1, name: /ci-bot/ }).waitFor()
    const keyId = /#\/keys\/([^/?]+)/.exec(page.url())![1]!
    expect(await page.content()).not.toContain(secret)
    await mark(page)

    // The official client through the gateway, until the trial tier's three calls are spent.
    // The tier's windows are fixed hours and days: no restart between spending and the meter.
    await clearOfWindowEdge(HOUR, EDGE_MARGIN)
    const client = new OpenAI({ apiKey: secret, baseURL: `${gateway.url}/v1`, maxRetries: 0 })
    let served = 0
    let refusal: unknown
    for (let i = 0; i < CALLS + 2 && refusal === undefined; i++) {
      try {
        const answer = await client.chat.completions.create({
          model: 'gpt-4o-mini',
          messages,
          max_tokens: 20,
        })
        expect(answer.choices[0]!.message.content!.length).toBeGreaterThan(0)
        served++
      } catch (error) {
        refusal = error
      }
    }
    expect(served).toBe(CALLS)
    expect(refusal).toBeInstanceOf(RateLimitError)
    expect((refusal as RateLimitError).error).toMatchObject({ code: 'rate_limit_exceeded' })

    // The key's page: the served calls and the 429 naming its limit, and the bar at zero.
    const rows = page.getByRole('region', { name: 'Recent requests (table)', exact: true })
    await rows.getByRole('row').filter({ hasText: 'rate limited' }).waitFor({ timeout: 20_000 })
    // The 429 came from the request limit, checked before the body (and its model) is read.
    await expect.poll(() => rows.locator('tbody tr').count(), { timeout: 20_000 }).toBe(CALLS + 1)
    expect(await rows.locator('tbody tr').filter({ hasText: 'gpt-4o-mini' }).count()).toBe(CALLS)
    expect(await rows.getByRole('row').filter({ hasText: 'rate limited' }).textContent()).toContain('calls')
    const calls = page.getByRole('meter', { name: 'calls (fixedWindow)' })
    // Only the tier the key is charged in: not every tier that counts keys.
    const left = page.getByRole('region', { name: 'Left now' })
    expect(await left.locator('.tier-line').allTextContents()).toEqual([expect.stringMatching(/^Tier trial/)])
    await expect
      .poll(() => calls.getAttribute('aria-valuetext'), { timeout: 20_000 })
      .toMatch(new RegExp(`^0 of ${CALLS} requests left`))
    expect(await stillSame(page)).toBe(true)

    // The overview tab, never reloaded: four requests, one refused by "calls", spend, top key.
    await expect
      .poll(() => stat(overview.page, 'Requests').textContent(), { timeout: 20_000 })
      .toBe(String(CALLS + 1))
    await expect.poll(() => stat(overview.page, 'Refused').textContent()).toBe('1')
    await expect
      .poll(() => overview.page.getByRole('meter', { name: 'calls' }).getAttribute('aria-valuetext'))
      .toBe('1 (100%)')
    await overview.page.getByRole('link', { name: 'ci-bot' }).waitFor()
    expect(await stat(overview.page, 'Spend').textContent()).toMatch(/^\$/)
    expect(await stillSame(overview.page)).toBe(true)

    // Revoked in the UI: the very next call is a 401.
    await page.getByRole('button', { name: 'Revoke' }).click()
    const revoke = page.getByRole('dialog', { name: 'Revoke key ci-bot' })
    await revoke.getByRole('button', { name: 'Revoke' }).click()
    await revoke.waitFor({ state: 'detached' })
    await page.getByRole('heading', { level: 1, name: /ci-bot.*revoked/ }).waitFor()
    await expect(
      client.chat.completions.create({ model: 'gpt-4o-mini', messages, max_tokens: 20 }),
    ).rejects.toBeInstanceOf(AuthenticationError)
    expect((await gateway.control!.control.keys.get(keyId)).status).toBe('revoked')

    expect(foreign(requests, gateway.url)).toEqual([])
    expect(foreign(overview.requests, gateway.url)).toEqual([])
    expect(problems).toEqual([])
    expect(overview.problems).toEqual([])
  })

  it("shows a key's own limit overrides in its live bars", async () => {
    const control = gateway.control!.control
    await clearOfWindowEdge(HOUR, EDGE_MARGIN)
    const key = await control.keys.create(
      {
        name: 'one-a-day',
        tier: 'trial',
        limits: { calls: { kind: 'fixedWindow', limit: 1, window: '1d' } },
      },
      { actor: 'test:setup' },
    )
    const client = new OpenAI({ apiKey: key.key, baseURL: `${gateway.url}/v1`, maxRetries: 0 })
    const { response } = await client.chat.completions
      .create({ model: 'gpt-4o-mini', messages, max_tokens: 5 })
      .withResponse()
    expect(response.headers.get('x-ratelimit-remaining-requests')).toBe('0')
    const { page, problems } = await open(`/dashboard/#/keys/${key.id}`, { signedIn: true })
    await page.getByRole('heading', { level: 1, name: /one-a-day/ }).waitFor()
    const calls = page.getByRole('meter', { name: 'calls (fixedWindow)' })
    await expect.poll(() => calls.getAttribute('aria-valuetext')).toMatch(/^0 of 1 requests? left/)
    // The tier's other limits, not overridden, are still shown.
    await page.getByRole('meter', { name: 'tokens (fixedWindow)' }).waitFor()
    expect(problems).toEqual([])
  })

  it('makes the screenshots of the overview and of a key at 1280×800', async () => {
    // An hour of history in the gateway's own ledger, beside the calls above, so that the plots
    // have something to draw; the live bars are the gateway's own limiter.
    const control = gateway.control!.control
    const key = await control.keys.create(
      {
        name: 'support-bot',
        tier: 'service',
        team: 'research',
        budgets: { usd: { limit: 2, period: 'day' } },
      },
      { actor: 'test:setup' },
    )
    const now = Date.now()
    const row = (
      m: number,
      extra: Pick<LedgerEntry, 'status' | 'outcome'> & Partial<LedgerEntry>,
    ): LedgerEntry => ({
      keyId: key.id,
      team: 'research',
      tier: 'service',
      subject: `key:${key.id}`,
      model: 'gpt-4o-mini',
      route: 'chat',
      time: now - m * MINUTE,
      ...extra,
    })
    for (let m = 1; m < 60; m++) {
      const n = 3 + Math.round(2 * Math.sin(m / 7)) + (m % 3)
      for (let i = 0; i < n; i++) {
        control.ledger.append(
          row(m, {
            status: 200,
            outcome: 'ok',
            source: 'upstream',
            promptTokens: 120 + i * 7,
            completionTokens: 40 + m,
            usd: 0.0004 + m / 100_000,
            latencyMs: 200 + ((m * 37 + i * 11) % 300),
          }),
        )
      }
      if (m % 11 === 0) {
        for (let i = 0; i < 3; i++) {
          control.ledger.append(
            row(m, { status: 429, outcome: 'rate_limited', reason: 'tokens', source: 'none', latencyMs: 1 }),
          )
        }
      }
    }
    await control.ledger.flush()
    const client = new OpenAI({ apiKey: key.key, baseURL: `${gateway.url}/v1`, maxRetries: 0 })
    for (let i = 0; i < 6; i++) {
      await client.chat.completions.create({ model: 'gpt-4o-mini', messages, max_tokens: 200 })
    }
    await control.lastUsed.flush()

    const { page, problems } = await open('/dashboard/', { signedIn: true, width: 1280, height: 800 })
    await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor()
    await page.getByRole('link', { name: 'support-bot' }).waitFor()
    await page.getByRole('link', { name: 'research' }).waitFor()
    await page.screenshot({ path: join(shots, 'dashboard-overview.png') })
    await page.goto(`${gateway.url}/dashboard/#/keys/${key.id}`)
    await page.getByRole('meter', { name: 'Dollars this day' }).waitFor()
    await page.getByRole('region', { name: 'Recent requests (table)', exact: true }).waitFor()
    await page.screenshot({ path: join(shots, 'dashboard-key.png') })
    expect(problems).toEqual([])
  })
})
