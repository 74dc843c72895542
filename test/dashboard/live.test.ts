/**
 * The dashboard follows what happens without a reload: ledger rows appended through the control
 * plane's ledger writer (served calls, 429s naming their limit, 401s — as the gateway will write
 * them) show up in the overview and on the key's page, live limits move, and events pushed into
 * the feed (a real alert from the HTTP core, a store outage) appear in the alerts feed with their
 * webhook's delivery. The screenshots of docs/ are
 * made from a run of the real gateway (gateway.test.ts).
 */
import type { Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { IssuedKey } from '../../src/control/index.js'
import { type DashboardFixture, refused, served, startDashboard, unauthenticated } from './harness.js'

const MINUTE = 60_000

/** The text of the stat tile labelled `label`. */
const stat = (page: Page, label: string) =>
  page
    .locator('.stat')
    .filter({ has: page.getByText(label, { exact: true }) })
    .locator('.stat-value')

/** Marks the page, to prove later that it was never reloaded. */
const mark = (page: Page) => page.evaluate('window.__notReloaded = true')
const stillSame = (page: Page) => page.evaluate('window.__notReloaded === true')

describe('the dashboard: live usage, refusals and alerts', () => {
  let f: DashboardFixture
  let key: IssuedKey
  beforeAll(async () => {
    f = await startDashboard()
    await f.control.teams.create(
      { id: 'research', name: 'Research', budgets: { usd: { limit: 20, period: 'month' } } },
      { actor: 'test:setup' },
    )
    key = await f.control.keys.create(
      { name: 'ci-bot', tier: 'service', team: 'research', budgets: { usd: { limit: 1, period: 'day' } } },
      { actor: 'test:setup' },
    )
  })
  afterAll(async () => {
    await f?.close()
  })

  it('usage and refusals appear in the overview and on the key page without a reload', async () => {
    const { page, problems } = await f.open('/dashboard/', { signedIn: true })
    await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor()
    await expect.poll(() => stat(page, 'Requests').textContent()).toBe('0')
    await page.getByText('No 429 in this range.').waitFor()
    await mark(page)

    const now = Date.now()
    await f.record([
      ...served(key.id, 40, { team: 'research', time: now - 2 * MINUTE }),
      ...refused(key.id, 6, 'tokens', { team: 'research', time: now - MINUTE }),
      ...refused(key.id, 2, 'budget', { team: 'research', time: now - MINUTE }),
      ...unauthenticated(3),
    ])
    // The page reads the API again on its own: the new rows arrive without a reload.
    await expect.poll(() => stat(page, 'Requests').textContent(), { timeout: 20_000 }).toBe('51')
    await expect.poll(() => stat(page, 'Refused').textContent()).toBe('11')
    const tokens = page.getByRole('meter', { name: 'tokens' })
    await tokens.waitFor()
    expect(await tokens.getAttribute('aria-valuetext')).toBe('6 (75%)')
    expect(await page.getByRole('meter', { name: 'budget' }).getAttribute('aria-valuetext')).toBe('2 (25%)')
    await page.getByRole('link', { name: 'ci-bot' }).waitFor() // top keys by spend
    await page.getByRole('link', { name: 'research' }).waitFor() // top teams by spend
    expect(await stat(page, 'Spend').textContent()).toBe('$0.02')
    expect(await stillSame(page)).toBe(true)

    // The key's page: its requests, served and refused with the limit that refused them.
    await page.getByRole('link', { name: 'ci-bot' }).click()
    await page.getByRole('heading', { level: 1, name: /ci-bot/ }).waitFor()
    const rows = page.getByRole('region', { name: 'Recent requests (table)', exact: true })
    await page.getByRole('button', { name: '429s' }).click()
    await rows.getByRole('row').filter({ hasText: 'budget' }).first().waitFor()
    expect(await rows.getByRole('row').filter({ hasText: 'rate limited' }).count()).toBe(8)
    await page.getByRole('meter', { name: 'Dollars this day' }).waitFor()

    // More rows and more use of its limits: the page follows, still without a reload.
    await f.record(refused(key.id, 1, 'hourly', { team: 'research' }))
    await rows.getByRole('row').filter({ hasText: 'hourly' }).waitFor({ timeout: 20_000 })
    const hourly = page.getByRole('meter', { name: 'hourly (slidingWindow)' })
    expect(await hourly.getAttribute('aria-valuetext')).toMatch(/^100 of 100 requests left/)
    await f.limiter.consume(`key:${key.id}`, { requests: 30 })
    await expect
      .poll(() => hourly.getAttribute('aria-valuetext'), { timeout: 20_000 })
      .toMatch(/^70 of 100 requests left/)
    expect(await stillSame(page)).toBe(true)
    expect(problems).toEqual([])
  })

  it('the alerts feed shows events as they are pushed, with their webhook delivery', async () => {
    const { page, problems } = await f.open('/dashboard/#/alerts', { signedIn: true })
    await page.getByRole('heading', { level: 1, name: 'Alerts' }).waitFor()
    await page.getByRole('status').getByText('Live').waitFor()
    await mark(page)

    // A real 80 % alert: the HTTP core's fourth-of-five-a-minute call crosses it (alertAt 0.8),
    // and its webhook refuses it (HTTP 500, twice: one retry); then Redis goes down.
    f.hook.status = 500
    const request = {
      method: 'POST',
      url: '/v1/chat/completions',
      headers: {},
      remoteAddress: '198.51.100.7',
    }
    for (let i = 0; i < 4; i++) await f.sluice.check(request)
    const list = page.getByRole('list').filter({ has: page.locator('.event') })
    const alert = list
      .getByRole('listitem')
      .filter({ hasText: 'ip:198.51.100.7 used 80% of its "minute" limit' })
    await alert.waitFor({ timeout: 10_000 })
    await f.sluice.flush()
    await alert.getByText('Webhook failed after 2 attempts: HTTP 500').waitFor({ timeout: 10_000 })
    const origin = new URL(f.hook.url).origin
    await list
      .getByText(`webhook ${origin} did not take the alert for ip:198.51.100.7 after 2 attempts`)
      .waitFor()
    expect(f.hook.received).toBe(2)
    f.feed.publish({
      type: 'store',
      severity: 'critical',
      message: 'Redis is unavailable; each tier’s outage policy answers',
    })
    await list.getByText('Redis is unavailable').waitFor({ timeout: 10_000 })
    expect(await page.content()).not.toContain('very-secret-part')
    // Filtered by type.
    await page.getByLabel('Show').selectOption('store')
    expect(await list.getByRole('listitem').count()).toBe(1)
    await page.getByLabel('Show').selectOption('')
    expect(await stillSame(page)).toBe(true)

    // Elsewhere, the menu counts what arrived since the feed was looked at.
    await page.getByRole('link', { name: 'Overview' }).click()
    await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor()
    f.feed.publish({
      type: 'block',
      subject: `key:${key.id}`,
      message: `key:${key.id} is blocked for 1m after repeated 429s`,
    })
    await page.getByRole('link', { name: /Alerts \(1 new\)/ }).waitFor({ timeout: 10_000 })
    await page
      .getByRole('region', { name: 'Latest alerts' })
      .getByRole('link', { name: `key:${key.id}` })
      .waitFor()
    expect(problems).toEqual([])
  })
})
