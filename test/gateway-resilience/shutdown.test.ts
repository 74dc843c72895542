/**
 * SIGTERM to a `sluice serve` process with 20 streams open: it stops accepting connections, lets the
 * streams finish (or, past the deadline, cuts them and charges what they used), settles every
 * reservation exactly once, flushes the ledger and exits 0 — and Redis holds exactly what the
 * ledger says.
 */
import { connect } from 'node:net'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parseConfig } from '../../src/gateway/config/load.js'
import type { GatewayConfigInput } from '../../src/gateway/config/schema.js'
import { sluiceOptions } from '../../src/gateway/http-options.js'
import { type LedgerRecord, readLedger } from '../../src/gateway/ledger.js'
import { generateApiKey, hashApiKey, Sluice } from '../../src/http/index.js'
import { RedisStore } from '../../src/store/redis/store.js'
import { type RedisServer, startRedis } from '../helpers/redis-server.js'
import { sleep } from '../helpers/sleep.js'
import { waitFor } from '../resilience/load.js'
import { chat, startServe, tempDir } from './serve-process.js'

const STREAMS = 20
const INFLIGHT_LIMIT = 50

/** A stream read to its end (or until the connection is cut). */
interface StreamRead {
  firstChunk: boolean
  done: boolean
  cut: boolean
  events: number
  finished: Promise<void>
}

function openStream(url: string, key: string, i: number): StreamRead {
  const read: StreamRead = {
    firstChunk: false,
    done: false,
    cut: false,
    events: 0,
    finished: Promise.resolve(),
  }
  read.finished = (async () => {
    try {
      const res = await fetch(`${url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: chat(`stream ${i}`, { stream: true, max_tokens: 1000 }),
      })
      if (res.status !== 200) throw new Error(`stream ${i}: status ${res.status}`)
      const decoder = new TextDecoder()
      let text = ''
      for await (const chunk of res.body!) {
        text += decoder.decode(chunk as Uint8Array, { stream: true })
        if (text.includes('"content"')) read.firstChunk = true
      }
      read.events = text.split('\n\n').filter((e) => e.startsWith('data:')).length
      read.done = text.includes('data: [DONE]')
    } catch {
      read.cut = true
    }
  })()
  return read
}

/** Whether a new TCP connection to the gateway's port is refused. */
function refused(url: string): Promise<boolean> {
  const { port, hostname } = new URL(url)
  return new Promise((resolve) => {
    const socket = connect(Number(port), hostname)
    socket.once('connect', () => {
      socket.destroy()
      resolve(false)
    })
    socket.once('error', () => resolve(true))
  })
}

describe('SIGTERM during 20 open streams', () => {
  let redis: RedisServer
  let run = 0

  beforeAll(async () => {
    redis = await startRedis()
  })
  afterAll(async () => {
    await redis.stop()
  })

  function setup(deadline: string, completionTokens: number) {
    const dir = tempDir()
    const key = generateApiKey()
    const config: GatewayConfigInput = {
      store: { type: 'redis', url: redis.url },
      prefix: `shutdown-${process.pid}-${++run}:`,
      auth: { requireKey: true, keys: [{ id: 'streamer', tier: 'streaming', hash: hashApiKey(key) }] },
      tiers: {
        streaming: {
          scope: 'key',
          limits: {
            // Logs keep every charge for the hour: what was charged stays visible, exactly.
            calls: { kind: 'slidingLog', limit: 1000, window: '1h' },
            tokens: { kind: 'slidingLog', unit: 'tokens', limit: 1e9, window: '1h' },
            dollars: { kind: 'slidingLog', unit: 'usd', limit: 1000, window: '1h' },
            inflight: { kind: 'concurrency', limit: INFLIGHT_LIMIT },
          },
        },
      },
      upstreams: {
        mock: {
          type: 'mock',
          tokensPerSecond: 10,
          completionTokens: { min: completionTokens, max: completionTokens },
        },
      },
      shutdown: { deadline },
      ledger: { path: join(dir, 'usage.jsonl') },
      log: { level: 'info' },
    }
    return { dir, key, config, ledgerPath: join(dir, 'usage.jsonl') }
  }

  /** What Redis holds for the subject: used requests, tokens, dollars and leases. */
  async function storeCounters(config: GatewayConfigInput) {
    const store = new RedisStore({ url: redis.url })
    try {
      const sluice = new Sluice(sluiceOptions(parseConfig(config), { store, logger: false }))
      const d = await sluice.tierLimiter('streaming').peek('key:streamer', { requests: 0, concurrent: 0 })
      const used = (name: string) => {
        const l = d.limits.find((x) => x.name === name)!
        return l.limit - l.remaining
      }
      return { calls: used('calls'), tokens: used('tokens'), usd: used('dollars'), leases: used('inflight') }
    } finally {
      await store.close()
    }
  }

  async function ledger(path: string): Promise<LedgerRecord[]> {
    const out: LedgerRecord[] = []
    for await (const r of readLedger(path)) out.push(r)
    return out
  }

  function expectStoreMatchesLedger(
    counters: Awaited<ReturnType<typeof storeCounters>>,
    records: LedgerRecord[],
  ) {
    expect(counters.calls).toBe(records.length)
    expect(counters.tokens).toBe(records.reduce((s, r) => s + r.tokens, 0))
    expect(Math.abs(counters.usd - records.reduce((s, r) => s + r.usd, 0))).toBeLessThan(2e-6)
    expect(counters.leases).toBe(0)
  }

  it('lets the streams finish within the deadline, refuses new connections meanwhile, exits 0', async () => {
    const { key, config, ledgerPath, dir } = setup('30s', 40)
    const gateway = await startServe(config, dir)
    const streams = Array.from({ length: STREAMS }, (_, i) => openStream(gateway.url, key, i))
    await waitFor('every stream to start', () => streams.every((s) => s.firstChunk), 20_000)

    gateway.child.kill('SIGTERM')
    let refusedWhileStreaming = false
    for (let i = 0; i < 200 && !refusedWhileStreaming; i++) {
      const open = streams.filter((s) => !s.done && !s.cut).length
      if ((await refused(gateway.url)) && open > 0) refusedWhileStreaming = true
      else await sleep(20)
    }
    expect(refusedWhileStreaming).toBe(true)

    await Promise.all(streams.map((s) => s.finished))
    expect(await gateway.exited).toBe(0)
    expect(streams.filter((s) => s.done)).toHaveLength(STREAMS)
    expect(streams.filter((s) => s.cut)).toHaveLength(0)

    const records = await ledger(ledgerPath)
    expect(records).toHaveLength(STREAMS)
    for (const r of records) {
      expect(r).toMatchObject({
        outcome: 'ok',
        status: 200,
        stream: true,
        completionTokens: 40,
        limited: true,
      })
    }
    expectStoreMatchesLedger(await storeCounters(config), records)
    expect(gateway.stderr()).toContain('SIGTERM')
  })

  it('past the deadline cuts the streams and charges what each used, settling all 20 once, exits 0', async () => {
    // 100 tokens at 10/s would take 10 s; the deadline cuts them after 300 ms.
    const { key, config, ledgerPath, dir } = setup('300ms', 100)
    const gateway = await startServe(config, dir)
    const streams = Array.from({ length: STREAMS }, (_, i) => openStream(gateway.url, key, i))
    await waitFor('every stream to start', () => streams.every((s) => s.firstChunk), 20_000)

    expect(await gateway.stop('SIGTERM')).toBe(0)
    await Promise.all(streams.map((s) => s.finished))
    expect(streams.filter((s) => s.done)).toHaveLength(0)

    const records = await ledger(ledgerPath)
    expect(records).toHaveLength(STREAMS)
    for (const r of records) {
      expect(r).toMatchObject({ outcome: 'aborted', stream: true, limited: true, source: 'counted' })
      // The prompt and what was streamed before the cut: some output, never the whole answer.
      expect(r.completionTokens).toBeGreaterThan(0)
      expect(r.completionTokens).toBeLessThan(100)
      expect(r.tokens).toBe(r.promptTokens + r.completionTokens)
    }
    expectStoreMatchesLedger(await storeCounters(config), records)
    expect(gateway.stderr()).toContain('cutting the calls still in flight')
  })
})
