import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { Redis } from 'ioredis'
import { freePort } from './free-port.js'

export interface RedisServer {
  url: string
  port: number
  /** Started by this helper (false when REDIS_URL pointed at an existing server). */
  owned: boolean
  stop(): Promise<void>
  /** Kills the server (SIGKILL) and starts it again on the same port, empty. */
  restart(): Promise<void>
  kill(): Promise<void>
  start(): Promise<void>
}

const started = new Set<ChildProcess>()
process.once('exit', () => {
  for (const child of started) child.kill('SIGKILL')
})
// Under vitest, also when the test file is done: its worker may be ended by a signal, and then
// no 'exit' handler runs and a server the file did not stop would outlive the run. (A process a
// test starts inherits VITEST but runs no tests: there afterAll throws, and 'exit' is enough.)
if (process.env.VITEST) {
  const { afterAll } = await import('vitest')
  try {
    afterAll(stopStarted)
  } catch {}
}

async function stopStarted(): Promise<void> {
  await Promise.all(
    [...started].map(async (child) => {
      child.kill('SIGKILL')
      if (child.exitCode === null && child.signalCode === null) await once(child, 'exit')
    }),
  )
}

async function waitForPing(url: string, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 10_000
  let lastError: unknown
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`redis-server exited with code ${child.exitCode}`)
    const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false })
    client.on('error', () => {}) // connection refused while the server starts: expected, retried below
    try {
      await client.connect()
      await client.ping()
      return
    } catch (error) {
      lastError = error
      await new Promise((r) => setTimeout(r, 25))
    } finally {
      client.disconnect()
    }
  }
  throw new Error(`redis-server did not answer: ${String(lastError)}`)
}

/**
 * A redis-server on 127.0.0.1:`port` that keeps nothing on disk, killed when this process exits.
 */
export function spawnRedis(port: number, extraArgs: string[]): ChildProcess {
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...extraArgs],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  )
  child.stdout?.resume()
  child.stderr?.resume()
  started.add(child)
  child.once('exit', () => started.delete(child))
  return child
}

/**
 * A real redis-server on a free port, or the one named by REDIS_URL when that is set (then stop,
 * kill and restart are not available and tests that need them are skipped by their callers).
 */
export async function startRedis(extraArgs: string[] = []): Promise<RedisServer> {
  const external = process.env.REDIS_URL
  if (external) {
    const refuse = () => Promise.reject(new Error('cannot control the REDIS_URL server'))
    return {
      url: external,
      port: Number(new URL(external).port || 6379),
      owned: false,
      stop: () => Promise.resolve(),
      restart: refuse,
      kill: refuse,
      start: refuse,
    }
  }
  for (let attempt = 0; ; attempt++) {
    const port = await freePort()
    const url = `redis://127.0.0.1:${port}`
    let child = spawnRedis(port, extraArgs)
    try {
      await waitForPing(url, child)
    } catch (error) {
      child.kill('SIGKILL')
      if (attempt < 3) continue
      throw error
    }
    const kill = async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL')
        await once(child, 'exit')
      }
    }
    const start = async () => {
      child = spawnRedis(port, extraArgs)
      await waitForPing(url, child)
    }
    return {
      url,
      port,
      owned: true,
      stop: kill,
      kill,
      start,
      restart: async () => {
        await kill()
        await start()
      },
    }
  }
}

/** A redis-server that answers FCALL and FUNCTION as a Redis before 7.0 does: "unknown command". */
export function startRedisWithoutFunctions(): Promise<RedisServer> {
  return startRedis([
    '--rename-command',
    'FCALL',
    'sluice-test-no-fcall',
    '--rename-command',
    'FUNCTION',
    'sluice-test-no-function',
  ])
}

/** Creates an ACL user allowed everything but Functions, and a client logged in as it. */
export async function scriptsOnlyClient(server: RedisServer, username: string): Promise<Redis> {
  const admin = new Redis(server.url)
  await admin.call('ACL', 'SETUSER', username, 'on', 'nopass', '~*', '&*', '+@all', '-fcall', '-function')
  admin.disconnect()
  const url = new URL(server.url)
  return new Redis({ host: url.hostname, port: Number(url.port), username })
}
