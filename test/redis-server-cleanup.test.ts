/**
 * A test file's redis-servers do not outlive it, even those it forgot to stop: vitest may end a
 * test file's worker with a signal, and then the helper's 'exit' handler never runs
 * (test/helpers/redis-server.ts stops them after the file too). Runs a fixture file that starts
 * two servers and stops neither in a vitest of its own, then finds both gone.
 */
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { promisify } from 'node:util'
import { Redis } from 'ioredis'
import { expect, it } from 'vitest'

const ROOT = new URL('..', import.meta.url).pathname
// vitest's own command (its package exports no path to it)
const VITEST = join(dirname(createRequire(import.meta.url).resolve('vitest/package.json')), 'vitest.mjs')

async function answers(port: number): Promise<boolean> {
  const client = new Redis(port, '127.0.0.1', {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  })
  client.on('error', () => {})
  try {
    await client.connect()
    return (await client.ping()) === 'PONG'
  } catch {
    return false
  } finally {
    client.disconnect()
  }
}

it("a test file's redis-servers it did not stop are gone once it is done", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-leaky-'))
  const ports = join(dir, 'ports')
  writeFileSync(ports, '')
  try {
    const { REDIS_URL: _external, ...env } = process.env
    await promisify(execFile)(
      process.execPath,
      [VITEST, 'run', '--config', 'test/fixtures/leaky-redis/vitest.config.ts'],
      { cwd: ROOT, env: { ...env, LEAKY_PORTS_FILE: ports } },
    )
    const started = readFileSync(ports, 'utf8').trim().split('\n').map(Number)
    expect(started).toHaveLength(2)
    for (const port of started) expect(await answers(port)).toBe(false)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}, 60_000)
