// The Chromium check on this machine: the binary it hands to the tests as SLUICE_TEST_CHROMIUM
// renders a page headless with the flags the browser tests use.
// (scripts/test-services/services.ts lists this file as needing chromium.)
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { expect, it } from 'vitest'
import { exported, passOn, runTestScript } from './bootstrap-helpers.js'

const exec = promisify(execFile)

it('hands the tests a SLUICE_TEST_CHROMIUM that renders a page headless', async () => {
  const run = await runTestScript(['--check', 'chromium'], {
    SLUICE_TEST_NO_INSTALL: '1',
    ...passOn('SLUICE_TEST_CHROMIUM'),
  })
  expect(run.stderr).toBe('')
  expect(run.stdout).toMatch(/^✓ chromium: \/\S+ \(Chromium \d+/m)
  expect(run.code).toBe(0)
  const chromium = exported(run, 'SLUICE_TEST_CHROMIUM')!
  const { stdout } = await exec(
    chromium,
    [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--dump-dom',
      'data:text/html,<p id="probe">rendered by chromium</p>',
    ],
    { timeout: 60_000 },
  )
  expect(stdout).toContain('<p id="probe">rendered by chromium</p>')
})
