/**
 * Three `sluice serve` processes on one real Redis enforce one limit: one subject's calls sent to
 * them round-robin are admitted exactly up to the limit overall, and the 80 % alert fires once.
 */
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type LedgerRecord, readLedger } from '../../src/gateway/ledger.js'
import { generateApiKey, hashApiKey } from '../../src/http/index.js'
import { type RedisServer, startRedis } from '../helpers/redis-server.js'
import { chat, metricSum, type ServeProcess, startReceiver, startServe, tempDir } from './serve-process.js'

const LIMIT = 30
const CALLS = 45
const INSTANCES = 3

describe('several gateway processes on one Redis', () => {
  let redis: RedisServer
  const gateways: ServeProcess[] = []

  beforeAll(async () => {
    redis = await startRedis()
  })
  afterAll(async () => {
    await Promise.all(gateways.map((g) => g.stop('SIGKILL')))
    await redis.stop()
  })

  it(`admit exactly ${LIMIT} of ${CALLS} calls sent round-robin, and alert once at 80 %`, async () => {
    const receiver = await startReceiver()
    const dir = tempDir()
    const key = generateApiKey()
    const ledgers = Array.from({ length: INSTANCES }, (_, i) => join(dir, `usage-${i}.jsonl`))
    const config = (ledger: string) => ({
      // A generous deadline: this test is about exactness across instances, not about outages, and a
      // loaded CI machine must not turn a slow call into a 503.
      store: {
        type: 'redis' as const,
        url: redis.url,
        failMode: 'closed' as const,
        instances: INSTANCES,
        timeout: '2s',
      },
      prefix: `multi-${process.pid}:`,
      auth: { requireKey: true, keys: [{ id: 'shared', tier: 'metered', hash: hashApiKey(key) }] },
      tiers: {
        metered: {
          scope: 'key' as const,
          block: false,
          limits: { calls: { kind: 'slidingLog' as const, limit: LIMIT, window: '1h' } },
        },
      },
      graduated: { alertAt: 0.8, webhook: { url: receiver.url, events: ['alert' as const] } },
      ledger: { path: ledger },
      log: { level: 'warn' as const },
    })
    gateways.push(...(await Promise.all(ledgers.map((l) => startServe(config(l), dir)))))
    expect(new Set(gateways.map((g) => g.url)).size).toBe(INSTANCES)

    // Round-robin, a few calls at a time on each instance so that they also race each other.
    const statuses: number[] = []
    for (let wave = 0; wave < CALLS; wave += 9) {
      const batch = Array.from({ length: Math.min(9, CALLS - wave) }, (_, j) => wave + j)
      const answers = await Promise.all(
        batch.map(async (i) => {
          const res = await fetch(`${gateways[i % INSTANCES]!.url}/v1/chat/completions`, {
            method: 'POST',
            headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
            body: chat(`call ${i}`),
          })
          await res.arrayBuffer()
          return res.status
        }),
      )
      statuses.push(...answers)
    }
    expect(statuses.filter((s) => s === 200)).toHaveLength(LIMIT)
    expect(statuses.filter((s) => s === 429)).toHaveLength(CALLS - LIMIT)

    // Every instance counted its own decisions; together they saw each call once.
    const metrics = await Promise.all(gateways.map(async (g) => (await fetch(`${g.url}/metrics`)).text()))
    const total = (labels: Record<string, string>) =>
      metrics.reduce((sum, text) => sum + metricSum(text, 'sluice_decisions_total', labels), 0)
    expect(total({ tier: 'metered', outcome: 'allowed', source: 'store' })).toBe(LIMIT)
    expect(total({ tier: 'metered', outcome: 'denied', limit: 'calls' })).toBe(CALLS - LIMIT)
    expect(metrics.reduce((sum, text) => sum + metricSum(text, 'sluice_alerts_total'), 0)).toBe(1)
    for (const [i, text] of metrics.entries()) {
      expect(metricSum(text, 'sluice_decisions_total', { tier: 'metered' }), `instance ${i}`).toBeGreaterThan(
        0,
      )
    }

    // SIGTERM flushes webhooks and ledgers; every instance exits 0.
    const codes = await Promise.all(gateways.map((g) => g.stop('SIGTERM')))
    expect(codes).toEqual([0, 0, 0])
    const alerts = receiver.bodies.filter((b) => (b as { event?: string }).event === 'sluice.alert')
    expect(alerts).toHaveLength(1)
    expect(alerts[0]).toMatchObject({ subject: 'key:shared', tier: 'metered', limit: { name: 'calls' } })
    await receiver.close()

    const records: LedgerRecord[] = []
    for (const path of ledgers) for await (const r of readLedger(path)) records.push(r)
    expect(records).toHaveLength(LIMIT)
    expect(records.every((r) => r.subject === 'key:shared' && r.outcome === 'ok' && r.limited)).toBe(true)
  })
})
