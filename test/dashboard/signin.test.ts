/**
 * Signing in to the dashboard in Chromium: a wrong admin token is refused, the right one is kept in
 * the tab's sessionStorage only (never a URL, a cookie or localStorage), JavaScript comes only from
 * the server itself under a strict CSP, and without an admin token the page says how to set one.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DASHBOARD_CSP } from '../../src/control/admin/index.js'
import { type DashboardFixture, foreign, signIn, startDashboard } from './harness.js'

describe('the dashboard: signing in', () => {
  let f: DashboardFixture
  beforeAll(async () => {
    f = await startDashboard()
  })
  afterAll(async () => {
    await f?.close()
  })

  it('refuses a wrong admin token, then keeps the right one in the tab only', async () => {
    const { page, problems, requests } = await f.open('/dashboard/')
    const field = page.getByLabel('Admin token')
    await expect(field.getAttribute('type')).resolves.toBe('password')
    await field.fill('sk-sluice-admin-this-is-not-the-token')
    await page.getByRole('button', { name: 'Sign in' }).click()
    await expect(page.getByRole('alert').textContent()).resolves.toBe('That admin token is wrong.')
    expect(await page.evaluate('sessionStorage.length')).toBe(0)
    // The 401 the test asked for is the only thing the browser reported.
    expect(problems).toHaveLength(1)
    expect(problems[0]).toMatch(/status of 401.*\/admin\/v1\/status/)
    problems.length = 0

    await signIn(page, f.token)
    expect(await page.evaluate("sessionStorage.getItem('sluice.adminToken')")).toBe(f.token)
    expect(await page.evaluate('localStorage.length')).toBe(0)
    expect(await page.evaluate('document.cookie')).toBe('')
    expect(page.url()).not.toContain(f.token)
    expect(requests.filter((r) => r.includes(f.token))).toEqual([])
    expect(requests.some((r) => r.includes('/admin/v1/usage'))).toBe(true)
    expect(foreign(requests, f.url)).toEqual([])
    expect(problems).toEqual([])

    // A reload keeps the tab signed in; signing out forgets the token.
    await page.reload()
    await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor()
    await page.getByRole('button', { name: 'Sign out' }).click()
    await page.getByLabel('Admin token').waitFor()
    expect(await page.evaluate('sessionStorage.length')).toBe(0)
    expect(problems).toEqual([])
  })

  it('a new tab is not signed in (sessionStorage is per tab)', async () => {
    const first = await f.open('/dashboard/')
    await signIn(first.page, f.token)
    const second = await first.context.newPage()
    await second.goto(`${f.url}/dashboard/`)
    await second.getByLabel('Admin token').waitFor()
    expect(await second.evaluate('sessionStorage.length')).toBe(0)
    expect(first.problems).toEqual([])
  })

  it('runs only JavaScript served by the server itself, under a strict Content-Security-Policy', async () => {
    const { page, problems, requests } = await f.open('/dashboard/', { signedIn: true })
    await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor()
    const response = await page.request.get(`${f.url}/dashboard/`)
    expect(response.headers()['content-security-policy']).toBe(DASHBOARD_CSP)
    const scripts = (await page.evaluate(
      "[...document.scripts].map((s) => ({ src: s.src, inline: s.src === '' ? s.textContent : null }))",
    )) as { src: string; inline: string | null }[]
    expect(scripts.length).toBeGreaterThan(0)
    for (const script of scripts) {
      expect(script.inline).toBeNull()
      expect(new URL(script.src).origin).toBe(f.url)
    }
    expect(foreign(requests, f.url)).toEqual([])
    // Whatever the page loaded came from /dashboard/ or went to /admin/v1/.
    for (const r of requests) expect(new URL(r).pathname).toMatch(/^\/(dashboard\/|admin\/v1\/)/)
    // An inline script injected into the page is refused by the policy, not run.
    const injected = await page.evaluate(
      "(() => { const s = document.createElement('script'); s.textContent = 'window.__ran = true'; document.body.append(s); return window.__ran === true })()",
    )
    expect(injected).toBe(false)
    expect(problems.filter((p) => !/Content Security Policy/.test(p))).toEqual([])
  })

  it('says how to set an admin token when the server has none, without calling the API', async () => {
    const off = await startDashboard({ adminToken: false })
    try {
      const { page, problems, requests } = await off.open('/dashboard/')
      await page.getByRole('heading', { level: 1, name: 'The admin API is off' }).waitFor()
      const text = await page.textContent('main')
      expect(text).toContain('SLUICE_ADMIN_TOKEN')
      expect(text).toContain('tokenHash')
      expect(requests.filter((r) => r.includes('/admin/v1/'))).toEqual([])
      expect(problems).toEqual([])
    } finally {
      await off.close()
    }
  })
})
