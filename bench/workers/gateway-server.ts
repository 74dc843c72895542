/**
 * For the gateway rows, in its own process: either the gateway's mock upstream alone, or the
 * gateway (`startGateway`) in front of a mock upstream that runs in another process, reached as an
 * OpenAI-compatible upstream (as a real deployment reaches its model server), or a bare pass-through
 * proxy (Fastify + undici, no limits, no accounting) in front of the mock: what one extra process hop
 * costs on this machine whatever it does; or Portkey's OSS gateway (`@portkey-ai/gateway`, its own
 * Node server started from its package) in front of the mock, reached as a custom OpenAI host.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import type { MemoryStore } from '../../src/store/memory.js'
import type { RedisStore } from '../../src/store/redis/store.js'
import type { Store, StoreOp } from '../../src/store/types.js'
import { builtModule } from '../harness/built.js'
import { readCpuWith, send, serve, workerConfig } from '../harness/child.js'
import { benchGatewayConfig, benchGatewayEnv } from '../harness/gateway-config.js'
import { startPassThrough } from './passthrough.mjs'

interface Config {
  role: 'mock' | 'gateway' | 'passthrough' | 'portkey'
  /**
   * mock, gateway: the sluice checkout to run, as a file URL ending in `/`; its built output
   * (dist/) is loaded, as users run it: the harness builds it first (`ensureBuilt`).
   */
  sluice?: string
  /** gateway, passthrough: the mock's base URL (with /v1). */
  upstreamUrl?: string
  store?: 'memory' | 'redis'
  redisUrl?: string
  /** gateway, Redis store: its `timeout` (ms; the gateway's default, 100, when not given). */
  storeTimeoutMs?: number
  /**
   * gateway: a store handed to `startGateway` instead of the configured one (no outage policy,
   * blocked-key cache or store metrics around it), to split what the Redis store costs:
   * `redis` a bare RedisStore on `redisUrl`; `ping` a MemoryStore that first waits for one Redis
   * PING per op (the round trip alone, without the script call's payload).
   */
  given?: 'redis' | 'ping'
  /** gateway: the store keys' prefix (two gateways on one Redis that must not share limits). */
  prefix?: string
  /** gateway: the demo key (service tier) the load generator sends. */
  apiKey?: string
  /** gateway: open a control database (SQLite) and issue a key there too (answered as `databaseKey`). */
  database?: boolean
  /** gateway: the abuse detectors on, with these options (`detectors` in sluice.yaml). */
  detectors?: Record<string, unknown>
}

const config = workerConfig<Config>()
let close: () => Promise<void>
let url: string
let databaseKey: string | undefined

/** A module of the sluice build the bench asked for. */
function sluice<T>(path: string): Promise<T> {
  if (config.sluice === undefined) throw new Error(`role ${config.role} needs the sluice checkout to run`)
  return builtModule<T>(config.sluice, path)
}

if (config.role === 'mock') {
  const { startMockUpstream } = await sluice<{
    startMockUpstream(options: { port: number }): Promise<{ url: string; close(): Promise<void> }>
  }>('gateway/mock/server.js')
  const upstream = await startMockUpstream({ port: 0 })
  url = upstream.url
  close = () => upstream.close()
} else if (config.role === 'passthrough') {
  ;({ url, close } = await startPassThrough(config.upstreamUrl!))
} else if (config.role === 'portkey') {
  ;({ url, close } = await startPortkey())
} else {
  const { startGateway } = await sluice<{
    startGateway(input: unknown, options: unknown): Promise<unknown>
  }>('gateway/index.js')
  const ledgerDir = mkdtempSync(join(tmpdir(), 'sluice-bench-'))
  let given: Store | undefined
  if (config.given === 'redis') {
    const store = await sluice<{ RedisStore: typeof RedisStore }>('store/redis/store.js')
    given = new store.RedisStore({ url: config.redisUrl! })
  }
  if (config.given === 'ping') {
    const store = await sluice<{ MemoryStore: typeof MemoryStore }>('store/memory.js')
    const memory = new store.MemoryStore()
    const redis = new Redis(config.redisUrl!)
    given = {
      execute: (op: StoreOp) => redis.ping().then(() => memory.execute(op)),
      ping: async () => {},
      close: async () => {
        redis.disconnect()
        await memory.close()
      },
    }
  }
  const gateway = (await startGateway(
    {
      ...benchGatewayConfig(config.upstreamUrl!, join(ledgerDir, 'usage.jsonl')),
      ...(config.store === 'redis' && {
        store: { type: 'redis', url: config.redisUrl, timeout: config.storeTimeoutMs },
      }),
      ...(config.prefix !== undefined && { prefix: config.prefix }),
      ...(config.database && { database: { url: join(ledgerDir, 'sluice.db') } }),
      ...(config.detectors && { detectors: config.detectors }),
    },
    {
      env: benchGatewayEnv(config.apiKey!),
      ...(given !== undefined && { store: given }),
    },
  )) as {
    url: string
    close(): Promise<void>
    control?: {
      control: { keys: { create(input: unknown, actor: unknown): Promise<{ key: string }> } }
    }
  }
  url = gateway.url
  if (config.database) {
    const issued = await gateway.control!.control.keys.create(
      { name: 'bench', tier: 'service' },
      { actor: 'bench' },
    )
    databaseKey = issued.key
  }
  close = async () => {
    await gateway.close()
    await given?.close()
    rmSync(ledgerDir, { recursive: true, force: true })
  }
}

/** A free TCP port on 127.0.0.1 (Portkey's server takes `--port=N` and cannot report port 0). */
async function freePort(): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as { port: number }
  server.close()
  await once(server, 'close')
  return port
}

/**
 * Portkey's gateway as its package starts it (`build/start-server.js`, headless: no log UI), in a
 * child process; ready when its port answers.
 */
async function startPortkey(): Promise<{ url: string; close: () => Promise<void> }> {
  const script = createRequire(import.meta.url).resolve('@portkey-ai/gateway/build/start-server.js')
  const port = await freePort()
  const child = spawn(process.execPath, [script, `--port=${port}`, '--headless'], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, NODE_ENV: 'production' },
  })
  const base = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 30_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`Portkey's gateway exited with code ${child.exitCode}`)
    try {
      await fetch(base, { signal: AbortSignal.timeout(1_000) })
      break
    } catch {
      if (Date.now() > deadline) {
        child.kill('SIGKILL')
        throw new Error(`Portkey's gateway did not answer on ${base} within 30 s`)
      }
      await new Promise((r) => setTimeout(r, 100))
    }
  }
  // Its CPU time is the child's: utime + stime from /proc (clock ticks, 100 per second on Linux).
  readCpuWith(() => {
    const fields = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
    return (Number(fields[11]) + Number(fields[12])) * 10_000
  })
  return {
    url: base,
    close: async () => {
      if (child.exitCode !== null) return
      const exited = once(child, 'exit')
      child.kill('SIGTERM')
      await exited
    },
  }
}

serve(
  async () => undefined,
  () => close(),
)
send({ type: 'ready', info: { url, databaseKey } })
