import { type ChildProcess, execFile } from 'node:child_process'
import { once } from 'node:events'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { Cluster, type ClusterOptions, Redis } from 'ioredis'
import { clusterClientOptions } from '../../src/store/redis/store.js'
import { freePort } from './free-port.js'
import { spawnRedis } from './redis-server.js'

const run = promisify(execFile)

export interface ClusterNode {
  port: number
  url: string
  /** SIGKILL; the node's slots are unreachable until it starts again. */
  kill(): Promise<void>
  /** Starts the node again on its port, from its own nodes.conf (its data is gone). */
  start(): Promise<void>
}

export interface RedisClusterServer {
  nodes: ClusterNode[]
  /** An ioredis Cluster client with sluice's recommended options (the caller closes it). */
  client(options?: ClusterOptions): Cluster
  /** Resolves when every running node reports cluster_state:ok. */
  waitHealthy(timeoutMs?: number): Promise<void>
  /** Sum of `calls` over the nodes' INFO commandstats, for the named commands. */
  commandCalls(commands: string[]): Promise<number>
  stop(): Promise<void>
}

function spawnNode(port: number, dir: string): ChildProcess {
  return spawnRedis(port, [
    '--cluster-enabled',
    'yes',
    '--cluster-config-file',
    'nodes.conf',
    // Short so that a killed node is noticed (and its return too) within a test's patience.
    '--cluster-node-timeout',
    '1000',
    '--dir',
    dir,
  ])
}

async function clientFor(port: number): Promise<Redis> {
  const client = new Redis({
    port,
    host: '127.0.0.1',
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  })
  client.on('error', () => {})
  await client.connect()
  return client
}

async function waitUntil(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let lastError: unknown
  while (Date.now() < deadline) {
    try {
      if (await check()) return
    } catch (error) {
      lastError = error
    }
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`${what} within ${timeoutMs} ms${lastError ? `: ${String(lastError)}` : ''}`)
}

async function nodeAnswers(port: number, child: ChildProcess): Promise<void> {
  await waitUntil(`redis-server on port ${port} did not answer`, 10_000, async () => {
    if (child.exitCode !== null) throw new Error(`redis-server exited with code ${child.exitCode}`)
    const c = await clientFor(port)
    try {
      return (await c.ping()) === 'PONG'
    } finally {
      c.disconnect()
    }
  })
}

/**
 * Three redis-server processes with cluster mode on, on free ports, joined by
 * `redis-cli --cluster create` (three masters, no replicas). Each node keeps its nodes.conf in a
 * directory of its own, so a node that is killed and started again rejoins with its slots.
 */
export async function startRedisCluster(): Promise<RedisClusterServer> {
  const root = mkdtempSync(join(tmpdir(), 'sluice-cluster-'))
  const ports: number[] = []
  while (ports.length < 3) {
    const port = await freePort()
    // The cluster bus listens on port + 10000: it must be free too, and distinct.
    if (port + 10_000 > 65_535 || ports.includes(port)) continue
    ports.push(port)
  }
  const children = new Map<number, ChildProcess>()
  const nodes: ClusterNode[] = ports.map((port) => {
    const dir = join(root, String(port))
    return {
      port,
      url: `redis://127.0.0.1:${port}`,
      kill: async () => {
        const child = children.get(port)
        if (child && child.exitCode === null && child.signalCode === null) {
          child.kill('SIGKILL')
          await once(child, 'exit')
        }
      },
      start: async () => {
        const child = spawnNode(port, dir)
        children.set(port, child)
        await nodeAnswers(port, child)
      },
    }
  })
  const stop = async () => {
    await Promise.all(nodes.map((n) => n.kill()))
    rmSync(root, { recursive: true, force: true })
  }
  try {
    for (const port of ports) mkdirSync(join(root, String(port)))
    await Promise.all(nodes.map((n) => n.start()))
    await run('redis-cli', [
      '--cluster',
      'create',
      ...ports.map((p) => `127.0.0.1:${p}`),
      '--cluster-replicas',
      '0',
      '--cluster-yes',
    ])
  } catch (error) {
    await stop()
    throw error
  }

  const running = () => nodes.filter((n) => children.get(n.port)?.exitCode === null)
  const waitHealthy = async (timeoutMs = 20_000) => {
    await waitUntil('the cluster did not report cluster_state:ok', timeoutMs, async () => {
      for (const n of running()) {
        const c = await clientFor(n.port)
        try {
          const info = String(await c.call('CLUSTER', 'INFO'))
          if (!info.includes('cluster_state:ok')) return false
          // Every node must also know every other node's slots.
          const slots = (await c.call('CLUSTER', 'SLOTS')) as unknown[]
          if (slots.length < nodes.length) return false
        } finally {
          c.disconnect()
        }
      }
      return true
    })
  }
  try {
    await waitHealthy()
  } catch (error) {
    await stop()
    throw error
  }

  return {
    nodes,
    client: (options = {}) =>
      new Cluster(
        nodes.map((n) => ({ host: '127.0.0.1', port: n.port })),
        clusterClientOptions(options),
      ),
    waitHealthy,
    commandCalls: async (commands) => {
      let total = 0
      for (const n of running()) {
        const c = await clientFor(n.port)
        try {
          total += commandCallsIn(await c.info('commandstats'), commands)
        } finally {
          c.disconnect()
        }
      }
      return total
    },
    stop,
  }
}

/** Sums `calls=` of the named commands in an INFO commandstats reply. */
export function commandCallsIn(info: string, commands: string[]): number {
  let total = 0
  for (const command of commands) {
    const m = new RegExp(`^cmdstat_${command.toLowerCase()}:calls=(\\d+)`, 'm').exec(info)
    if (m) total += Number(m[1])
  }
  return total
}
