/**
 * The Detections page end to end, in Chromium, against `sluice serve` itself with a prompt-loop
 * detector of small thresholds: detections raised by real calls (the official `openai` client,
 * and plain HTTP with a user id a trusted proxy passes on) appear on the page; a subject full of
 * markup is shown as text; Clear lowers the flag (the API agrees, the client is served again);
 * Allow-list, confirmed in a dialog, stops later calls from being detected; an API error is shown
 * to the operator. Makes docs/dashboard-detections.png with SLUICE_DASHBOARD_SCREENSHOTS=1.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import OpenAI, { RateLimitError } from 'openai'
import type { Browser, BrowserContext } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Gateway, startGateway } from '../../src/gateway/index.js'
import { dashboardBuild } from './build.js'
import { foreign, launchChromium, openPage, type Watched } from './harness.js'

const DOCS = fileURLToPath(new URL('../../docs/', import.meta.url))
const TOKEN = 'sluice-e2e-admin-token-0123456789abcdef'
const HOSTILE = '<img src=x onerror="window.__xss=1">'
const limits = { calls: { kind: 'fixedWindow', limit: 1000, window: '1h' } }

describe('the Detections page over sluice serve', () => {
  let gateway: Gateway
  let browser: Browser
  let dir: string
  const contexts: BrowserContext[] = []
  const open = (path: string): Promise<Watched> =>
    openPage(browser, contexts, `${gateway.url}${path}`, TOKEN, { width: 1280, height: 800 })
  const admin = async (path: string) => {
    const r = await fetch(`${gateway.url}/admin/v1${path}`, { headers: { authorization: `Bearer ${TOKEN}` } })
    expect(r.status, path).toBe(200)
    return (await r.json()) as Record<string, unknown>
  }
  const detections = async (subject: string) =>
    (await admin(`/detections?subject=${encodeURIComponent(subject)}`)).items as Record<string, unknown>[]
  const chat = (client: OpenAI, content: string) =>
    client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content }],
      max_tokens: 8,
    })
  /** A call without a key, as a trusted proxy forwards it for an end user. */
  const asUser = (user: string, content: string) =>
    fetch(`${gateway.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-user-id': user },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content }], max_tokens: 8 }),
    })

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sluice-dashboard-detections-'))
    gateway = await startGateway(
      {
        port: 0,
        database: { url: join(dir, 'sluice.db'), keyTtl: '1h' },
        ledger: { path: false },
        snapshot: false,
        auth: { trustProxy: ['loopback'], trustedUserHeader: 'x-user-id' },
        tiers: {
          anonymous: { scope: 'ip', limits },
          authenticated: { scope: 'user', limits },
          service: { scope: 'key', limits },
        },
        detectors: { loop: { alertAt: 2, throttleAt: 3, blockAt: 0, throttlePerMinute: 1 } },
      },
      { logger: false, env: { SLUICE_ADMIN_TOKEN: TOKEN }, dashboardRoot: await dashboardBuild() },
    )
    browser = await launchChromium()
  }, 120_000)
  afterAll(async () => {
    for (const c of contexts) await c.close().catch(() => {})
    await browser?.close()
    await gateway?.close()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  it('shows detections raised by real calls, clears one, allow-lists a subject, shows API errors', async () => {
    const control = gateway.control!.control
    const looper = await control.keys.create({ name: 'looper', tier: 'service' }, { actor: 'test:setup' })
    const agent = await control.keys.create({ name: 'agent', tier: 'service' }, { actor: 'test:setup' })
    const client = (key: string) => new OpenAI({ apiKey: key, baseURL: `${gateway.url}/v1`, maxRetries: 0 })
    const loops = client(looper.key)
    for (let i = 0; i < 3; i++) await chat(loops, 'Are we there yet?')
    const refusal = await chat(loops, 'Are we there yet?').catch((e: unknown) => e)
    expect(refusal).toBeInstanceOf(RateLimitError)
    expect((refusal as RateLimitError).error).toMatchObject({ code: 'prompt_loop' })
    const agents = client(agent.key)
    for (let i = 0; i < 2; i++) await chat(agents, 'Poll the queue.')
    for (let i = 0; i < 2; i++) expect((await asUser(HOSTILE, 'Say it again.')).status).toBe(200)
    const keySubject = `key:${looper.id}`
    const agentSubject = `key:${agent.id}`
    const userSubject = `user:${HOSTILE}`
    await expect.poll(async () => (await detections(userSubject)).length).toBe(1)

    const { page, problems, requests } = await open('/dashboard/#/detections')
    await page.getByRole('heading', { level: 1, name: 'Detections' }).waitFor()
    const table = page.getByRole('region', { name: 'Detections (table)' })
    const rowsOf = (subject: string) => table.locator('tbody tr').filter({ hasText: subject })
    await expect.poll(() => rowsOf(keySubject).count()).toBe(2)
    expect(await rowsOf(keySubject).first().textContent()).toMatch(/loop.*throttled.*active/)
    expect(await rowsOf(agentSubject).count()).toBe(1)

    // Markup from a client is text: shown as typed, no element made of it, nothing run.
    const hostile = rowsOf(HOSTILE)
    expect(await hostile.count()).toBe(1)
    expect(await hostile.locator('.cell-subject').textContent()).toContain(userSubject)
    expect(await page.locator('main img').count()).toBe(0)
    expect(await page.evaluate('window.__xss')).toBeUndefined()

    // Clear: the page and the API say cleared, and the same prompt is served again.
    await page
      .getByRole('button', { name: `Clear loop for ${keySubject}` })
      .first()
      .click()
    await expect.poll(() => rowsOf(keySubject).first().textContent()).toMatch(/cleared.*by admin-api/)
    expect(await page.getByRole('button', { name: `Clear loop for ${keySubject}` }).count()).toBe(0)
    expect((await detections(keySubject)).map((d) => d.state)).toEqual(['cleared', 'cleared'])
    expect((await admin(`/detections/${encodeURIComponent(keySubject)}`)).flags).toEqual({})
    await expect(chat(loops, 'Are we there yet?')).resolves.toBeDefined()

    // The state filter asks the API: only the subjects still active.
    await page.getByLabel('State').selectOption('active')
    const shown = async () => [await rowsOf(keySubject).count(), await rowsOf(agentSubject).count()]
    await expect.poll(shown).toEqual([0, 1])
    await page.getByLabel('State').selectOption('')
    await expect.poll(shown).toEqual([2, 1])

    // Allow-list, from the keyboard, confirmed in a dialog: later loops are not detected.
    await page.getByRole('button', { name: `Allow-list ${agentSubject}` }).focus()
    await page.keyboard.press('Enter')
    const dialog = page.getByRole('dialog', { name: 'Allow-list a subject' })
    expect(await dialog.textContent()).toContain(agentSubject)
    await dialog.getByLabel('How long').selectOption({ label: 'For good (until lifted)' })
    await dialog.getByRole('button', { name: 'Allow-list' }).click()
    await dialog.waitFor({ state: 'detached' })
    await expect.poll(() => rowsOf(agentSubject).textContent()).toContain('allow-listed')
    expect(await page.getByRole('button', { name: `Allow-list ${agentSubject}` }).count()).toBe(0)
    expect((await admin(`/detections/${encodeURIComponent(agentSubject)}`)).allowListed).toBe(true)
    for (let i = 0; i < 5; i++) await chat(agents, 'Poll the queue.')
    await gateway.sluice.flush()
    expect((await detections(agentSubject)).map((d) => d.level)).toEqual(['alert'])

    const shots = process.env.SLUICE_DASHBOARD_SCREENSHOTS === '1' ? DOCS : dir
    await page.screenshot({ path: join(shots, 'dashboard-detections.png') })

    // An error the API answers is shown, not swallowed (a clear naming a detector it does not know).
    await page.route('**/admin/v1/detections/*/clear', (route) =>
      route.continue({ postData: JSON.stringify({ detector: 'no-such-detector' }) }),
    )
    await page.getByRole('button', { name: `Clear loop for ${userSubject}` }).click()
    const alert = page.getByRole('alert').filter({ hasText: 'Clearing loop' })
    expect(await alert.textContent()).toMatch(/^Clearing loop for user:.*: detector must be one of/)
    await page.unroute('**/admin/v1/detections/*/clear')
    expect(await rowsOf(HOSTILE).textContent()).toContain('active')

    expect(foreign(requests, gateway.url)).toEqual([])
    expect(problems).toEqual([expect.stringMatching(/status of 400.*\/admin\/v1\/detections\/.*\/clear/)])
  })
})
