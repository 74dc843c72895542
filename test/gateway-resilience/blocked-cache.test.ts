/**
 * The gateway's blocked-key cache: a blocked client hammering the gateway costs Redis (almost)
 * nothing, and `sluice unblock` reaches the running gateway's cache through Redis pub/sub at once,
 * well inside the cache's staleness bound.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type CliIo, main } from '../../src/cli.js'
import type { GatewayConfigInput } from '../../src/gateway/config/schema.js'
import { type Gateway, startGateway } from '../../src/gateway/index.js'
import { type RedisServer, startRedis } from '../helpers/redis-server.js'
import { sleep } from '../helpers/sleep.js'
import { chat, metricSum, tempDir } from './serve-process.js'

/** Script calls clients sent Redis so far (INFO commandstats). */
async function scriptCalls(admin: Redis): Promise<number> {
  const info = await admin.info('commandstats')
  let total = 0
  for (const m of info.matchAll(/^cmdstat_(evalsha|eval):calls=(\d+)/gm)) total += Number(m[2])
  return total
}

describe('blocked-key cache behind the gateway', () => {
  let redis: RedisServer
  let admin: Redis
  let gateway: Gateway

  beforeAll(async () => {
    redis = await startRedis()
    admin = new Redis(redis.url)
  })
  afterAll(async () => {
    await gateway?.close()
    admin.disconnect()
    await redis.stop()
  })

  it('answers a blocked client without Redis, and forgets the block as soon as `sluice unblock` runs', async () => {
    const config: GatewayConfigInput = {
      store: { type: 'redis', url: redis.url, failMode: 'closed', blockedCache: { maxAge: '1m' } },
      prefix: `cache-${process.pid}:`,
      tiers: {
        anonymous: {
          limits: {
            hourly: null,
            tokens: null,
            burst: null,
            inflight: null,
            second: { kind: 'slidingLog', limit: 2, window: '1s' },
          },
          block: { after: 2, within: '1m', durations: ['1h'] },
        },
      },
      ledger: { path: false },
    }
    gateway = await startGateway({ ...config, port: 0 }, { env: {}, logger: false })
    const send = async () => {
      const res = await fetch(`${gateway.url}/v1/chat/completions`, { method: 'POST', body: chat('hi') })
      await res.arrayBuffer()
      return { status: res.status, retry: res.headers.get('x-should-retry') }
    }
    const first = [await send(), await send(), await send(), await send()]
    expect(first.map((r) => r.status)).toEqual([200, 200, 429, 429])
    expect(first[3]!.retry).toBe('false') // the second denial started the block

    const before = await scriptCalls(admin)
    for (let i = 0; i < 300; i++) expect((await send()).status).toBe(429)
    // The block was learned from the denial that started it: the 300 calls cost Redis nothing.
    expect((await scriptCalls(admin)) - before).toBeLessThanOrEqual(3)
    const metrics = await (await fetch(`${gateway.url}/metrics`)).text()
    expect(metricSum(metrics, 'sluice_blocked_cache_hits_total')).toBeGreaterThanOrEqual(297)

    // The limit itself has refilled long since; only the block (cached for up to 1 min) denies.
    await sleep(1_100)
    expect((await send()).status).toBe(429)
    const dir = tempDir()
    writeFileSync(join(dir, 'sluice.yaml'), JSON.stringify(config))
    const out: string[] = []
    const io: CliIo = { out: (t) => out.push(t), err: (t) => out.push(t), env: {}, cwd: dir }
    expect(await main(['unblock', 'ip:127.0.0.1'], io), out.join('\n')).toBe(0)

    let status = 429
    for (let i = 0; i < 100 && status !== 200; i++) {
      status = (await send()).status
      if (status !== 200) await sleep(20)
    }
    expect(status).toBe(200)
  })
})
