import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { GatewayConfigInput } from '../../src/gateway/config/schema.js'

const ROOT = join(import.meta.dirname, '../..')
const CLI = join(ROOT, 'src/cli.ts')
/** tsx's loader, resolved from here: the child runs in a temporary directory. */
const TSX = import.meta.resolve('tsx')

const running = new Set<ChildProcess>()
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL')
})

export interface ServeProcess {
  /** http://127.0.0.1:port of the gateway. */
  url: string
  child: ChildProcess
  stdout(): string
  stderr(): string
  /** Sends a signal (default SIGTERM) and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>
  /** Resolves with the exit code once the process has exited. */
  exited: Promise<number | null>
}

export function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'sluice-gwr-'))
}

/**
 * Runs `sluice serve --config <file>` from the sources (node --import tsx src/cli.ts), as a user
 * would run the CLI, and waits until it listens. SLUICE_* variables of the test's environment are
 * not passed on, so that the config file alone decides.
 */
export async function startServe(
  config: GatewayConfigInput,
  dir = tempDir(),
  options: { env?: Record<string, string> } = {},
): Promise<ServeProcess> {
  const child = spawnServe(config, dir, options.env)
  let out = ''
  let err = ''
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    out += d
  })
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    err += d
  })
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => resolve(code))
  })
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`sluice serve did not start:\n${out}\n${err}`)), 30_000)
    const onData = () => {
      const match = /listening on (http:\/\/\S+)/.exec(out)
      if (match) {
        clearTimeout(timer)
        child.stdout!.off('data', onData)
        resolve(match[1]!)
      }
    }
    child.stdout!.on('data', onData)
    void exited.then((code) => {
      clearTimeout(timer)
      reject(new Error(`sluice serve exited with ${code} before listening:\n${out}\n${err}`))
    })
  })
  return {
    url,
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
      return exited
    },
  }
}

/**
 * Spawns `sluice serve --config <file>` (stdout and stderr piped) without waiting for it.
 * SLUICE_* variables of the test's environment are not passed on; `env` adds variables.
 */
export function spawnServe(
  config: GatewayConfigInput,
  dir = tempDir(),
  extraEnv: Record<string, string> = {},
): ChildProcess {
  const path = join(dir, `sluice-${running.size}-${Date.now()}.yaml`)
  // JSON is YAML: the file is read by the same loader as any sluice.yaml.
  writeFileSync(path, JSON.stringify({ port: 0, ...config }, null, 2))
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env))
    if (!k.startsWith('SLUICE_') && v !== undefined) env[k] = v
  const child = spawn(process.execPath, ['--import', TSX, CLI, 'serve', '--config', path], {
    cwd: dir,
    env: { ...env, ...extraEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  running.add(child)
  child.once('exit', () => running.delete(child))
  return child
}

/** A local webhook receiver that keeps every JSON body POSTed to it. */
export async function startReceiver(): Promise<{ url: string; bodies: unknown[]; close(): Promise<void> }> {
  const bodies: unknown[] = []
  const server: Server = createServer((req: IncomingMessage, res) => {
    let text = ''
    req.setEncoding('utf8')
    req.on('data', (d: string) => {
      text += d
    })
    req.on('end', () => {
      try {
        bodies.push(JSON.parse(text))
      } catch {
        bodies.push(text)
      }
      res.writeHead(204).end()
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}/hook`,
    bodies,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  }
}

/** Sums the samples of a Prometheus counter whose labels include all of `labels`. */
export function metricSum(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue
    const wanted = Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))
    if (wanted) sum += Number(line.slice(line.lastIndexOf(' ') + 1))
  }
  return sum
}

export const chat = (content: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content }], max_tokens: 8, ...extra })
