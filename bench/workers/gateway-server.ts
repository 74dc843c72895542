/**
 * For the gateway rows, in its own process: either the gateway's mock upstream alone, or the
 * gateway (`startGateway`) in front of a mock upstream that runs in another process, reached as an
 * OpenAI-compatible upstream (as a real deployment reaches its model server), or a bare pass-through
 * proxy (Fastify + undici, no limits, no accounting) in front of the mock: what one extra process hop
 * costs on this machine whatever it does.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Fastify from 'fastify'
import { Pool } from 'undici'
import { loadMockUpstream, loadStartGateway } from '../adapters.js'
import { send, serve, workerConfig } from '../harness/child.js'

interface Config {
  role: 'mock' | 'gateway' | 'passthrough'
  /** gateway, passthrough: the mock's base URL (with /v1). */
  upstreamUrl?: string
  store?: 'memory' | 'redis'
  redisUrl?: string
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

if (config.role === 'mock') {
  const mock = await loadMockUpstream()
  if (!mock.ok) throw new Error(mock.reason)
  const upstream = await mock.value({ port: 0 })
  url = upstream.url
  close = () => upstream.close()
} else if (config.role === 'passthrough') {
  const upstream = new URL(config.upstreamUrl!)
  const base = upstream.pathname.replace(/\/$/, '')
  const pool = new Pool(upstream.origin, { connections: 16, keepAliveTimeout: 30_000 })
  const app = Fastify({ logger: false })
  app.post('/v1/chat/completions', async (request, reply) => {
    const res = await pool.request({
      method: 'POST',
      path: `${base}/chat/completions`,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(request.body),
    })
    const text = await res.body.text()
    return reply.code(res.statusCode).header('content-type', 'application/json').send(text)
  })
  url = await app.listen({ host: '127.0.0.1', port: 0 })
  close = async () => {
    await app.close()
    await pool.close()
  }
} else {
  const start = await loadStartGateway()
  if (!start.ok) throw new Error(start.reason)
  const ledgerDir = mkdtempSync(join(tmpdir(), 'sluice-bench-'))
  // The service tier (per API key) with its request, token and burst limits raised so that nothing
  // is denied; its in-flight limit (100) stays, above the bench's 16 in flight.
  const huge = {
    hourly: { kind: 'slidingWindow', limit: 1e9, window: '1h' },
    tokens: { kind: 'tokenBucket', unit: 'tokens', capacity: 1e12, refillPerSecond: 1 },
    burst: { kind: 'tokenBucket', capacity: 1e9, refillPerSecond: 1 },
  }
  const gateway = (await (start.value as (input: unknown, options: unknown) => Promise<unknown>)(
    {
      host: '127.0.0.1',
      port: 0,
      store: config.store === 'redis' ? { type: 'redis', url: config.redisUrl } : { type: 'memory' },
      tiers: { service: { limits: huge } },
      upstreams: { bench: { type: 'openai', baseUrl: config.upstreamUrl, apiKeyEnv: 'BENCH_UPSTREAM_KEY' } },
      defaultUpstream: 'bench',
      ledger: { path: join(ledgerDir, 'usage.jsonl') },
      ...(config.database && { database: { url: join(ledgerDir, 'sluice.db') } }),
      ...(config.detectors && { detectors: config.detectors }),
      log: { level: 'warn' },
    },
    { env: { SLUICE_DEMO_KEY: config.apiKey, BENCH_UPSTREAM_KEY: 'unused' } },
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
    rmSync(ledgerDir, { recursive: true, force: true })
  }
}

serve(
  async () => undefined,
  () => close(),
)
send({ type: 'ready', info: { url, databaseKey } })
