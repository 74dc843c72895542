/**
 * The dashboard for keyboard and screen-reader users, and on a phone: on every page, every control
 * the browser's accessibility tree holds has a name (inputs by their labels), one h1, no focus
 * order forced by tabindex, a sane Tab order, dialogs that keep and return focus, and no page wider
 * than a 390 px screen (nor a 1280 px one). Chromium's own accessibility tree is read (CDP), as a
 * screen reader would read it.
 */
import type { Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { IssuedKey } from '../../src/control/index.js'
import { type DashboardFixture, refused, served, startDashboard } from './harness.js'

interface AxNode {
  ignored: boolean
  role?: { value: string }
  name?: { value: string }
}

/** Roles that are operated or read on their own and so need a name. */
const NAMED_ROLES = new Set([
  'button',
  'link',
  'textbox',
  'combobox',
  'spinbutton',
  'searchbox',
  'checkbox',
  'meter',
  'img',
  'dialog',
  'region',
])

async function unnamed(page: Page): Promise<string[]> {
  const cdp = await page.context().newCDPSession(page)
  const { nodes } = (await cdp.send('Accessibility.getFullAXTree')) as { nodes: AxNode[] }
  await cdp.detach()
  return nodes
    .filter((n) => !n.ignored && NAMED_ROLES.has(n.role?.value ?? '') && (n.name?.value ?? '').trim() === '')
    .map((n) => n.role!.value)
}

/** Checks made on the DOM: one h1, no positive tabindex, unique ids, labelled form fields. */
const DOM_CHECKS = `(() => {
  const problems = []
  const h1 = document.querySelectorAll('h1').length
  if (h1 !== 1) problems.push('h1 count ' + h1)
  for (const el of document.querySelectorAll('[tabindex]')) if (el.tabIndex > 0) problems.push('positive tabindex on ' + el.outerHTML.slice(0, 60))
  const ids = [...document.querySelectorAll('[id]')].map((e) => e.id)
  for (const id of ids) if (ids.indexOf(id) !== ids.lastIndexOf(id)) problems.push('duplicate id ' + id)
  for (const el of document.querySelectorAll('input, select, textarea')) {
    if (el.type === 'hidden') continue
    const label = [...(el.labels ?? [])].map((l) => l.textContent.trim()).join(' ')
    if (label === '' && !el.getAttribute('aria-label')) problems.push('unlabelled ' + el.outerHTML.slice(0, 60))
  }
  if (!document.documentElement.lang) problems.push('no lang')
  return problems
})()`

/** The element focus is on, as a short description (its name or text). */
const FOCUSED = `(() => {
  const el = document.activeElement
  if (!el || el === document.body) return 'body'
  const text = (el.getAttribute('aria-label') || el.textContent || el.id || '').trim().replace(/\\s+/g, ' ')
  return el.tagName.toLowerCase() + ':' + text.slice(0, 40)
})()`

/**
 * Every element Tab can reach, in document order (none has a positive tabindex: checked above),
 * and how many of them come before the page's h1 (where focus stands when a page opens).
 */
const TABBABLE = `(() => {
  const all = [...document.querySelectorAll('a[href], button, input, select, textarea, [tabindex]')]
    .filter((el) => el.tabIndex >= 0 && !el.disabled && el.getClientRects().length > 0 && !el.closest('[inert]'))
  const h1 = document.querySelector('h1')
  const before = all.filter((el) => el.compareDocumentPosition(h1) & Node.DOCUMENT_POSITION_FOLLOWING).length
  const names = all.map((el) => {
    const text = (el.getAttribute('aria-label') || el.textContent || el.id || '').trim().replace(/\\s+/g, ' ')
    return el.tagName.toLowerCase() + ':' + text.slice(0, 40)
  })
  return { names, before }
})()`

describe('the dashboard: keyboard, labels, narrow screens', () => {
  let f: DashboardFixture
  let key: IssuedKey
  const pages = () =>
    [
      ['overview', '/dashboard/#/', 'Overview'],
      ['keys', '/dashboard/#/keys', 'Keys'],
      ['key', `/dashboard/#/keys/${key.id}`, /a11y-key/],
      ['teams', '/dashboard/#/teams', 'Teams'],
      ['team', '/dashboard/#/teams/ops', 'Operations'],
      ['alerts', '/dashboard/#/alerts', 'Alerts'],
      ['detections', '/dashboard/#/detections', 'Detections'],
    ] as const

  beforeAll(async () => {
    f = await startDashboard()
    await f.control.teams.create(
      { id: 'ops', name: 'Operations', budgets: { usd: { limit: 10, period: 'week' } } },
      { actor: 'test:setup' },
    )
    key = await f.control.keys.create(
      {
        name: 'a11y-key',
        tier: 'service',
        team: 'ops',
        budgets: { tokens: { limit: 100_000, period: 'day' } },
      },
      { actor: 'test:setup' },
    )
    await f.record([...served(key.id, 12, { team: 'ops' }), ...refused(key.id, 3, 'tokens', { team: 'ops' })])
    f.feed.publish({
      type: 'alert',
      subject: `key:${key.id}`,
      message: `key:${key.id} used 81% of its "tokens" limit`,
    })
    // A detection with a long message and many addresses: its table must fit a phone (scrolling in its box).
    await f.detectors.log({
      event: 'sluice.detection',
      detector: 'sharedKey',
      level: 'alert',
      subject: `key:${key.id}`,
      tier: 'service',
      shadow: false,
      value: 6,
      threshold: 5,
      addresses: Array.from({ length: 6 }, (_, i) => `2001:db8:${i}::/64`),
      message: `key:${key.id} was used from 6 addresses (threshold 5): alert; addresses ${'2001:db8::/64 '.repeat(6)}`,
      at: new Date().toISOString(),
    })
  })
  afterAll(async () => {
    await f?.close()
  })

  it('names every control, labels every field, and has one h1 on each page (and the sign-in page)', async () => {
    const signin = await f.open('/dashboard/')
    await signin.page.getByLabel('Admin token').waitFor()
    expect(await unnamed(signin.page)).toEqual([])
    expect(await signin.page.evaluate(DOM_CHECKS)).toEqual([])

    const { page, problems } = await f.open('/dashboard/', { signedIn: true })
    for (const [name, path, heading] of pages()) {
      await page.goto(`${f.url}${path}`)
      await page.getByRole('heading', { level: 1, name: heading }).waitFor()
      await page.locator('[aria-busy="true"]').first().waitFor({ state: 'detached' })
      expect(await unnamed(page), name).toEqual([])
      expect(await page.evaluate(DOM_CHECKS), name).toEqual([])
    }
    // The create-key dialog: every field has its label.
    await page.goto(`${f.url}/dashboard/#/keys`)
    await page.getByRole('button', { name: 'Create key' }).click()
    await page.getByRole('dialog', { name: 'Create a key' }).waitFor()
    expect(await unnamed(page)).toEqual([])
    expect(await page.evaluate(DOM_CHECKS)).toEqual([])
    expect(problems).toEqual([])
  })

  it('goes through the page in document order with Tab, skips to the content, and reaches every link', async () => {
    const { page, problems } = await f.open('/dashboard/#/keys', { signedIn: true })
    await page.getByRole('heading', { level: 1, name: 'Keys' }).waitFor()
    await page.getByRole('link', { name: 'a11y-key' }).waitFor()
    const { names, before } = (await page.evaluate(TABBABLE)) as { names: string[]; before: number }
    expect(names.slice(0, 8)).toEqual([
      'button:Skip to content',
      'a:sluice',
      'a:Overview',
      'a:Keys',
      'a:Teams',
      'a:Alerts',
      'a:Detections',
      'button:Sign out',
    ])
    expect(before).toBe(8)
    // Focus is on the page's heading (a page focuses its h1 when it opens): Tab goes on from there
    // through the content in document order, leaves the page, and comes back from the top.
    expect(await page.evaluate('document.activeElement.tagName')).toBe('H1')
    const seen: string[] = []
    for (let i = 0; i < names.length + 1; i++) {
      await page.keyboard.press('Tab')
      seen.push((await page.evaluate(FOCUSED)) as string)
    }
    expect(seen).toEqual([...names.slice(before), 'body', ...names.slice(0, before)])

    // The skip button takes focus past the menu; Enter on a link opens its page.
    await page.getByRole('button', { name: 'Skip to content' }).focus()
    await page.keyboard.press('Enter')
    expect(await page.evaluate('document.activeElement.id')).toBe('main')
    await page.getByRole('link', { name: 'a11y-key' }).focus()
    await page.keyboard.press('Enter')
    await page.getByRole('heading', { level: 1, name: /a11y-key/ }).waitFor()
    // The new page's heading has the focus: a screen reader says where it is.
    expect(await page.evaluate('document.activeElement.tagName')).toBe('H1')

    // Sorting by keyboard: the header says how the column is sorted.
    await page.goto(`${f.url}/dashboard/#/keys`)
    const nameHeader = page.getByRole('columnheader', { name: 'Name' })
    expect(await nameHeader.getAttribute('aria-sort')).toBe('none')
    await nameHeader.getByRole('button').focus()
    await page.keyboard.press('Enter')
    await expect.poll(() => nameHeader.getAttribute('aria-sort')).toBe('ascending')
    expect(problems).toEqual([])
  })

  it('opens a dialog from the keyboard, keeps focus inside, and gives it back on Escape', async () => {
    const { page, problems } = await f.open('/dashboard/#/keys', { signedIn: true })
    const opener = page.getByRole('button', { name: 'Create key' })
    await opener.waitFor()
    await expect.poll(() => opener.isEnabled()).toBe(true)
    await opener.focus()
    await page.keyboard.press('Enter')
    const dialog = page.getByRole('dialog', { name: 'Create a key' })
    await dialog.waitFor()
    for (let i = 0; i < 25; i++) {
      await page.keyboard.press('Tab')
      const inside = await page.evaluate(
        "document.activeElement === document.body || !!document.activeElement.closest('dialog')",
      )
      expect(inside, `Tab ${i + 1} left the dialog for ${await page.evaluate(FOCUSED)}`).toBe(true)
    }
    // Where focus is the moment the dialog leaves the page: a focus handed back only later (after
    // the next paint, say) leaves it on the body in between, where a screen reader loses its place.
    await page.evaluate(`(() => {
      const dialog = document.querySelector('dialog')
      new MutationObserver((records, observer) => {
        if (dialog.isConnected) return
        observer.disconnect()
        window.focusWhenClosed = ${FOCUSED}
      }).observe(document.body, { childList: true, subtree: true })
    })()`)
    await page.keyboard.press('Escape')
    await dialog.waitFor({ state: 'detached' })
    expect(await page.evaluate('window.focusWhenClosed')).toBe('button:Create key')
    expect(await page.evaluate(FOCUSED)).toBe('button:Create key')
    expect(problems).toEqual([])
  })

  it('fits a 390 px and a 1280 px wide screen: no page is wider than the window', async () => {
    for (const width of [390, 1280]) {
      const { page, problems } = await f.open('/dashboard/', { signedIn: true, width, height: 844 })
      for (const [name, path, heading] of pages()) {
        await page.goto(`${f.url}${path}`)
        await page.getByRole('heading', { level: 1, name: heading }).waitFor()
        await page.locator('[aria-busy="true"]').first().waitFor({ state: 'detached' })
        const [scroll, inner] = (await page.evaluate(
          '[document.documentElement.scrollWidth, window.innerWidth]',
        )) as number[]
        expect(scroll, `${name} at ${width} px`).toBeLessThanOrEqual(inner!)
      }
      expect(problems).toEqual([])
    }
  })
})
