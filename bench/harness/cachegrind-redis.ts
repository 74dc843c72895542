/**
 * A private redis-server run under `valgrind --tool=cachegrind --cache-sim=no`: what it executes
 * is counted in instructions, which do not depend on how busy the machine is (timings on a shared
 * 2-core machine do). The count is read as the server exits. Needs valgrind and redis-cli.
 */
import { execFile, spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { Redis } from 'ioredis'
import { freePort } from '../../test/helpers/free-port.js'

const run = promisify(execFile)

export interface CountedRedis {
  port: number
  url: string
  /** A connected client (retries while valgrind starts the server). */
  admin: Redis
  /** Shuts the server down; resolves with every instruction it executed since it started. */
  stop(): Promise<number>
}

/** `name` names its files in `dir`; `cluster`: cluster-enabled, owning every slot. */
export async function startCountedRedis(dir: string, name: string, cluster = false): Promise<CountedRedis> {
  let port = await freePort()
  while (port + 10_000 > 65_535) port = await freePort() // the cluster bus port is port + 10000
  const out = join(dir, name)
  const server = spawn(
    'valgrind',
    [
      '--tool=cachegrind',
      '--cache-sim=no',
      `--cachegrind-out-file=${out}.cg`,
      'redis-server',
      ...['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
      ...(cluster ? ['--cluster-enabled', 'yes', '--cluster-config-file', `${out}.nodes.conf`] : []),
    ],
    { stdio: 'ignore' },
  )
  const admin = new Redis(port, '127.0.0.1', { retryStrategy: () => 200, maxRetriesPerRequest: null })
  admin.on('error', () => {}) // refused while valgrind starts the server: retried
  await admin.ping()
  if (cluster) {
    await admin.call('CLUSTER', 'ADDSLOTSRANGE', '0', '16383')
    while (!String(await admin.call('CLUSTER', 'INFO')).includes('cluster_state:ok')) {
      await new Promise((r) => setTimeout(r, 200))
    }
  }
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    admin,
    async stop() {
      admin.disconnect()
      // valgrind writes its counts as the server exits
      await run('redis-cli', ['-p', String(port), 'shutdown', 'nosave']).catch(() => {})
      if (server.exitCode === null) await once(server, 'exit')
      const summary = /^summary:\s+(\d+)/m.exec(readFileSync(`${out}.cg`, 'utf8'))
      if (!summary) throw new Error('no cachegrind summary')
      return Number(summary[1])
    },
  }
}
