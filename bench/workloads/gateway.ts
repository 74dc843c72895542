import { Pool } from 'undici'
import { loadMockUpstream, loadStartGateway } from '../adapters.js'
import { Worker } from '../harness/child.js'
import { type Contender, contest } from '../harness/contest.js'
import type { Operation } from '../harness/drive.js'
import { allowedNote, throughputRow } from '../harness/rows.js'
import type { BenchContext, Section, Workload } from '../harness/types.js'

const WORKER = new URL('../workers/gateway-server.ts', import.meta.url)
/** "Moderate load", where the gateway's latency goal (≤ 1 ms added at p99) applies. */
const IN_FLIGHT = 16
const BODY = JSON.stringify({
  model: 'gpt-4o-mini',
  messages: [{ role: 'user', content: 'Say hello in five words.' }],
  max_tokens: 16,
})

/** POST a small chat completion and read the whole answer; allowed means HTTP 200. */
function chatOp(pool: Pool, path: string): Operation {
  return async () => {
    const res = await pool.request({
      method: 'POST',
      path,
      headers: { 'content-type': 'application/json' },
      body: BODY,
    })
    await res.body.text()
    return res.statusCode === 200
  }
}

function poolFor(url: string): { pool: Pool; path: string } {
  const u = new URL(url)
  return {
    pool: new Pool(u.origin, { connections: IN_FLIGHT, pipelining: 1 }),
    path: `${u.pathname.replace(/\/$/, '')}/chat/completions`,
  }
}

async function run(ctx: BenchContext): Promise<Section> {
  const mock = await loadMockUpstream()
  if (!mock.ok)
    return { unavailable: [{ id: 'gateway', workload: 'gateway → mock upstream', reason: mock.reason }] }
  const gateway = await loadStartGateway()
  const redis = await ctx.redis()

  const direct: Contender = {
    name: 'mock upstream direct',
    async setup() {
      const upstream = await Worker.start(WORKER, { role: 'mock' })
      const { pool, path } = poolFor(upstream.info.url as string)
      return {
        op: chatOp(pool, path),
        teardown: async () => {
          await pool.close()
          await upstream.stop()
        },
      }
    },
  }
  const through = (store: 'memory' | 'redis'): Contender => ({
    name: `gateway, ${store === 'memory' ? 'MemoryStore' : 'RedisStore'}`,
    async setup() {
      const upstream = await Worker.start(WORKER, { role: 'mock' })
      const gw = await Worker.start(WORKER, {
        role: 'gateway',
        upstreamUrl: upstream.info.url,
        store,
        redisUrl: redis.url,
      })
      const { pool, path } = poolFor(gw.info.url as string)
      return {
        op: chatOp(pool, path),
        teardown: async () => {
          await pool.close()
          await gw.stop()
          await upstream.stop()
        },
      }
    },
  })

  const contenders = gateway.ok ? [through('memory'), through('redis'), direct] : [direct]
  const measures = await contest(ctx, {
    id: 'gateway',
    contenders,
    inFlight: IN_FLIGHT,
    reset: () => redis.flush(),
  })
  const baseline = measures[measures.length - 1]!
  const rows = gateway.ok
    ? [0, 1].map((i) => {
        const m = measures[i]!
        const odd = allowedNote([m, baseline], 'all')
        const added = `adds ${(m.p50Ms - baseline.p50Ms).toFixed(3)} ms at p50, ${(m.p99Ms - baseline.p99Ms).toFixed(3)} ms at p99`
        return throughputRow(
          `gateway-${i === 0 ? 'memory' : 'redis'}`,
          `${m.name} → mock, ${IN_FLIGHT} in flight`,
          [m],
          {
            unit: 'requests/s',
            baseline,
            note: [added, odd].filter(Boolean).join('; '),
          },
        )
      })
    : [
        throughputRow('gateway', `gateway → mock, ${IN_FLIGHT} in flight`, [undefined], {
          unit: 'requests/s',
          baseline,
        }),
      ]
  return {
    rows,
    ...(gateway.ok
      ? {}
      : {
          unavailable: [
            { id: 'gateway', workload: 'gateway → mock upstream (memory, Redis)', reason: gateway.reason },
          ],
        }),
  }
}

export const gatewayOverhead: Workload = {
  id: 'gateway',
  title: 'gateway (startGateway) to its mock upstream vs the mock directly, memory and Redis stores',
  needsRedis: true,
  run,
}
