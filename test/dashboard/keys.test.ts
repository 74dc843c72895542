/**
 * Managing keys in the dashboard, in Chromium, against the admin API over SQLite: create a key
 * (its secret shown once, copied), change its limits and budgets (bad input named at its field),
 * rotate it, revoke it, and unblock it — each checked against the control plane itself.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type DashboardFixture, startDashboard } from './harness.js'

describe('the dashboard: keys', () => {
  let f: DashboardFixture
  beforeAll(async () => {
    f = await startDashboard()
    await f.control.teams.create({ id: 'research', name: 'Research' }, { actor: 'test:setup' })
  })
  afterAll(async () => {
    await f?.close()
  })

  it('creates a key, shows its secret once with a copy button, and the secret works', async () => {
    const { page, problems } = await f.open('/dashboard/#/keys', { signedIn: true })
    await page.getByRole('heading', { level: 1, name: 'Keys' }).waitFor()
    await page.getByRole('button', { name: 'Create key' }).click()
    const dialog = page.getByRole('dialog', { name: 'Create a key' })
    await dialog.getByLabel('Name (required)').fill('ci-bot')
    await dialog.getByLabel('Tier').selectOption('service')
    await dialog.getByLabel('Team').selectOption('research')
    await dialog.getByLabel('Dollar budget (USD)').fill('25')
    await dialog.getByLabel('Dollar budget period').selectOption('day')
    await dialog.getByRole('button', { name: 'Create key' }).click()

    const secretDialog = page.getByRole('dialog', { name: 'Key ci-bot created' })
    await secretDialog.waitFor()
    const secret = await secretDialog.getByLabel('API key').inputValue()
    expect(secret).toMatch(/^sk-sluice-[a-z2-7]{10}-/)
    await secretDialog.getByRole('button', { name: 'Copy' }).click()
    await secretDialog.getByText('Copied to the clipboard.').waitFor()
    expect(await page.evaluate('navigator.clipboard.readText()')).toBe(secret)

    const key = await f.control.keys.verify(secret)
    expect(key).toMatchObject({
      name: 'ci-bot',
      tier: 'service',
      team: 'research',
      budgets: { usd: { limit: 25, period: 'day' } },
    })

    // Closing the dialog leads to the key's page; the secret is nowhere in it any more.
    await secretDialog.getByRole('button', { name: 'I have stored it' }).click()
    await page.getByRole('heading', { level: 1, name: /ci-bot/ }).waitFor()
    expect(page.url()).toContain(`#/keys/${key!.id}`)
    expect(await page.content()).not.toContain(secret)
    await page.reload()
    await page.getByRole('heading', { level: 1, name: /ci-bot/ }).waitFor()
    expect(await page.content()).not.toContain(secret)
    // The list shows it with its budget bar.
    await page.goto(`${f.url}/dashboard/#/keys`)
    await page.getByRole('link', { name: 'ci-bot' }).waitFor()
    await page.getByRole('meter', { name: 'Dollars this day' }).waitFor()
    expect(problems).toEqual([])
  })

  it('edits limits and budgets; bad input is named at its field and nothing is saved', async () => {
    const issued = await f.control.keys.create({ name: 'editable', tier: 'service' }, { actor: 'test:setup' })
    const { page, problems } = await f.open(`/dashboard/#/keys/${issued.id}`, { signedIn: true })
    await page.getByRole('heading', { level: 1, name: /editable/ }).waitFor()
    await page.getByRole('button', { name: 'Edit' }).click()
    const dialog = page.getByRole('dialog', { name: 'Edit key editable' })

    await dialog.getByLabel('Limit overrides (JSON, optional)').fill('{ not json')
    await dialog.getByRole('button', { name: 'Save changes' }).click()
    await dialog.getByText('Limit overrides is not valid JSON').waitFor()

    // The API refuses a negative budget and names the field: shown beside it.
    await dialog.getByLabel('Limit overrides (JSON, optional)').fill('')
    await dialog.getByLabel('Dollar budget (USD)').fill('-5')
    await dialog.getByRole('button', { name: 'Save changes' }).click()
    await dialog.getByRole('alert').filter({ hasText: 'budgets.usd.limit' }).waitFor()
    expect(await dialog.getByLabel('Dollar budget (USD)').getAttribute('aria-invalid')).toBe('true')
    expect((await f.control.keys.get(issued.id)).budgets).toBeNull()
    // The browser reports the 400 the test asked for, and nothing else.
    expect(problems).toEqual([expect.stringMatching(/status of 400/)])
    problems.length = 0

    await dialog.getByLabel('Dollar budget (USD)').fill('12.5')
    await dialog.getByLabel('Token budget', { exact: true }).fill('200000')
    await dialog.getByLabel('Token budget period').selectOption('week')
    await dialog
      .getByLabel('Limit overrides (JSON, optional)')
      .fill('{"tokens":{"kind":"tokenBucket","unit":"tokens","capacity":50000,"per":"1h"}}')
    await dialog.getByRole('button', { name: 'Save changes' }).click()
    await dialog.waitFor({ state: 'detached' })
    await page.getByText('"capacity":50000').waitFor()
    const saved = await f.control.keys.get(issued.id)
    expect(saved.budgets).toEqual({
      usd: { limit: 12.5, period: 'month' },
      tokens: { limit: 200000, period: 'week' },
    })
    expect(saved.limits).toEqual({
      tokens: { kind: 'tokenBucket', unit: 'tokens', capacity: 50000, per: '1h' },
    })
    const audit = await f.control.audit.list({ action: 'key.update', targetId: issued.id })
    expect(audit.items).toHaveLength(1)
    expect(problems).toEqual([])
  })

  it('rotates (the new secret once, the old one stops) and revokes', async () => {
    const issued = await f.control.keys.create({ name: 'rotating', tier: 'service' }, { actor: 'test:setup' })
    const { page, problems } = await f.open(`/dashboard/#/keys/${issued.id}`, { signedIn: true })
    await page.getByRole('heading', { level: 1, name: /rotating/ }).waitFor()
    await page.getByRole('button', { name: 'Rotate' }).click()
    const confirm = page.getByRole('dialog', { name: 'Rotate key rotating' })
    await confirm.getByLabel('Old secret stops').selectOption('0')
    await confirm.getByRole('button', { name: 'Rotate' }).click()
    const shown = page.getByRole('dialog', { name: 'New secret for rotating' })
    const secret = await shown.getByLabel('API key').inputValue()
    expect(secret).not.toBe(issued.key)
    await shown.getByText('The old secret no longer works.').waitFor()
    expect(await f.control.keys.verify(secret)).toMatchObject({ id: issued.id })
    expect(await f.control.keys.verify(issued.key)).toBeUndefined()
    await shown.getByRole('button', { name: 'I have stored it' }).click()

    await page.getByRole('button', { name: 'Revoke' }).click()
    const revoke = page.getByRole('dialog', { name: 'Revoke key rotating' })
    await revoke.getByRole('button', { name: 'Revoke' }).click()
    await revoke.waitFor({ state: 'detached' })
    await page.getByRole('heading', { level: 1, name: /rotating.*revoked/ }).waitFor()
    expect(await page.getByRole('button', { name: 'Revoke' }).isDisabled()).toBe(true)
    expect(await f.control.keys.verify(secret)).toBeUndefined()
    expect((await f.control.keys.get(issued.id)).status).toBe('revoked')
    expect(problems).toEqual([])
  })

  it('shows a blocked key as blocked and unblocks it', async () => {
    const issued = await f.control.keys.create({ name: 'noisy', tier: 'service' }, { actor: 'test:setup' })
    const subject = `key:${issued.id}`
    // Three denials within the minute block it (the harness's limiter: block after 3).
    await f.limiter.consume(subject, { tokens: 10_000 })
    for (let i = 0; i < 3; i++) await f.limiter.consume(subject, { tokens: 10_000 })
    expect((await f.limiter.peek(subject, { requests: 0 })).blocked).toBe(true)

    const { page, problems } = await f.open(`/dashboard/#/keys/${issued.id}`, { signedIn: true })
    await page.getByRole('heading', { level: 1, name: /noisy.*blocked/ }).waitFor()
    // A slow network: the dialog stays open, its button busy, while the page's own is still there.
    await page.route('**/subjects/*/unblock', async (route) => {
      await new Promise((resolve) => setTimeout(resolve, 300))
      await route.continue()
    })
    await page.getByRole('button', { name: 'Unblock' }).click()
    const dialog = page.getByRole('dialog', { name: 'Unblock key noisy' })
    await dialog.getByRole('button', { name: 'Unblock' }).click()
    await dialog.waitFor({ state: 'detached' })
    await page.getByRole('button', { name: 'Unblock' }).waitFor({ state: 'detached' })
    expect((await f.limiter.peek(subject, { requests: 0 })).blocked).toBe(false)
    const audit = await f.control.audit.list({ action: 'subject.unblock', targetId: subject })
    expect(audit.items).toHaveLength(1)
    expect(problems).toEqual([])
  })
})
