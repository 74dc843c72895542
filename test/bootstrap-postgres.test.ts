// The PostgreSQL check on this machine's server: the URL it hands to the tests lets them create
// and drop a database; a URL where nothing listens is one clear line without its password.
// (scripts/test-services/services.ts lists this file as needing postgres.)
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { expect, it } from 'vitest'
import { exported, passOn, runTestScript } from './bootstrap-helpers.js'
import { freePort } from './helpers/free-port.js'

const exec = promisify(execFile)

it('hands the tests a SLUICE_TEST_PG_URL on which they can create and drop a database', async () => {
  const run = await runTestScript(['--check', 'postgres'], {
    SLUICE_TEST_NO_INSTALL: '1',
    ...passOn('SLUICE_TEST_PG_URL'),
  })
  expect(run.stderr).toBe('')
  expect(run.stdout).toMatch(/^✓ postgres: \S+ can create databases \(PostgreSQL \d+/m)
  expect(run.code).toBe(0)
  const url = exported(run, 'SLUICE_TEST_PG_URL')!
  expect(url).toBe(process.env.SLUICE_TEST_PG_URL || 'postgres://postgres@127.0.0.1:5432/postgres')
  const db = `sluice_bootstrap_${process.pid}`
  const psql = (sql: string) => exec('psql', ['--no-psqlrc', '-At', '--dbname', url, '--command', sql])
  await psql(`CREATE DATABASE ${db}`)
  try {
    const { stdout } = await psql(`SELECT count(*) FROM pg_database WHERE datname = '${db}'`)
    expect(stdout.trim()).toBe('1')
  } finally {
    await psql(`DROP DATABASE ${db}`)
  }
})

it('a URL where no server listens is one line naming the port, never the password', async () => {
  const port = await freePort()
  const run = await runTestScript(['--check', 'postgres'], {
    SLUICE_TEST_NO_INSTALL: '1',
    SLUICE_TEST_PG_URL: `postgres://postgres:hunter2@127.0.0.1:${port}/postgres`,
  })
  expect(run.code).toBe(1)
  const lines = run.stderr.trim().split('\n')
  expect(lines).toHaveLength(1)
  expect(lines[0]).toMatch(new RegExp(`^✗ postgres: no PostgreSQL cluster on port ${port}\\b.*To fix: `))
  expect(run.stdout + run.stderr).not.toContain('hunter2')
})
