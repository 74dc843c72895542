import { once } from 'node:events'
import { mkdtempSync } from 'node:fs'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { GatewayConfigInput } from '../../src/gateway/config/schema.js'
import { type Gateway, startGateway } from '../../src/gateway/index.js'
import { type LedgerRecord, readLedger } from '../../src/gateway/ledger.js'
import { generateApiKey, hashApiKey } from '../../src/http/index.js'
import { MemoryStore } from '../../src/store/memory.js'
import { RedisStore } from '../../src/store/redis/store.js'
import type { Store } from '../../src/store/types.js'
import { type RedisServer, startRedis } from '../helpers/redis-server.js'

export type StoreKind = 'memory' | 'redis'
export const STORE_KINDS: StoreKind[] = ['memory', 'redis']

let redis: Promise<RedisServer> | undefined
let counter = 0

/** One redis-server per test file, started on first use (stop it with stopRedis in afterAll). */
export function sharedRedis(): Promise<RedisServer> {
  redis ??= startRedis()
  return redis
}

export async function stopRedis(): Promise<void> {
  if (redis) await (await redis).stop()
  redis = undefined
}

export interface TestGateway extends Gateway {
  ledgerPath: string
  /** Everything the ledger holds (after flushing it). */
  ledgerRecords(): Promise<LedgerRecord[]>
  /** Resolves once every admitted call has settled and the ledger is on disk. */
  settled(): Promise<void>
  /** How much of `unit`-limit `limit` a subject has used in a tier (limit − remaining), charging nothing. */
  used(tier: string, subject: string, limit: string): Promise<number>
}

/** A memory-store gateway whose one upstream is `upstream` (an OpenAI-style server of the test's own), put on a free port first. */
export async function startGatewayInFrontOf(upstream: Server): Promise<TestGateway> {
  upstream.listen(0, '127.0.0.1')
  await once(upstream, 'listening')
  const { port } = upstream.address() as AddressInfo
  return startTestGateway('memory', {
    upstreams: { provider: { type: 'openai', baseUrl: `http://127.0.0.1:${port}/v1` } },
    defaultUpstream: 'provider',
  })
}

/** A gateway on a free port with its own store (memory, or the shared Redis under a fresh prefix) and ledger. */
export async function startTestGateway(
  kind: StoreKind,
  config: GatewayConfigInput = {},
  env: Record<string, string> = {},
): Promise<TestGateway> {
  const store: Store =
    kind === 'memory' ? new MemoryStore() : new RedisStore({ url: (await sharedRedis()).url })
  const dir = mkdtempSync(join(tmpdir(), 'sluice-gw-'))
  const ledgerPath = join(dir, 'usage.jsonl')
  const gateway = await startGateway(
    {
      port: 0,
      prefix: `t${process.pid}-${++counter}:`,
      ...config,
      ledger: { path: ledgerPath, ...config.ledger },
    },
    { logger: process.env.SLUICE_TEST_LOG ? undefined : false, store, env },
  )
  const close = gateway.close
  return Object.assign(gateway, {
    ledgerPath,
    async close() {
      await close()
      await store.close()
    },
    async ledgerRecords() {
      await gateway.ledger?.flush()
      const out: LedgerRecord[] = []
      for await (const r of readLedger(ledgerPath)) out.push(r)
      return out
    },
    async settled() {
      const deadline = Date.now() + 30_000
      while (gateway.accounting.open.size > 0) {
        if (Date.now() > deadline) throw new Error(`${gateway.accounting.open.size} calls never settled`)
        await new Promise((r) => setTimeout(r, 10))
      }
      await gateway.ledger?.flush()
    },
    async used(tier: string, subject: string, limit: string) {
      const decision = await gateway.sluice.tierLimiter(tier).peek(subject, { requests: 0, concurrent: 0 })
      const status = decision.limits.find((l) => l.name === limit)
      if (!status) throw new Error(`no limit ${limit} in tier ${tier}`)
      return status.limit - status.remaining
    },
  })
}

/** A fresh API key and its config entry. */
export function newKey(
  tier: string,
  id: string,
): { key: string; entry: { hash: string; tier: string; id: string } } {
  const key = generateApiKey()
  return { key, entry: { hash: hashApiKey(key), tier, id } }
}

/** Reads an SSE response body to the end, returning its events' data fields. */
export async function sseData(response: Response): Promise<string[]> {
  const text = await response.text()
  return text
    .split('\n\n')
    .filter((e) => e.trim() !== '')
    .map((e) =>
      e
        .split('\n')
        .filter((l) => l.startsWith('data:'))
        .map((l) => l.slice(l.startsWith('data: ') ? 6 : 5))
        .join('\n'),
    )
}
