import { Pool } from 'undici'
import { loadMockUpstream, loadStartGateway } from '../adapters.js'
import { Worker } from '../harness/child.js'
import { type Contender, contest } from '../harness/contest.js'
import type { Operation } from '../harness/drive.js'
import { formatRate } from '../harness/progress.js'
import { allowedNote, throughputRow } from '../harness/rows.js'
import type { BenchContext, Section, Workload } from '../harness/types.js'

const WORKER = new URL('../workers/gateway-server.ts', import.meta.url)
/** Requests in flight: 16 for throughput under load; 1 for the latency the gateway adds alone. */
const LOADS = { gateway: 16, 'gateway-serial': 1 } as const
type GatewayRow = keyof typeof LOADS
const BODY = JSON.stringify({
  model: 'gpt-4o-mini',
  messages: [{ role: 'user', content: 'Say hello in five words.' }],
  max_tokens: 16,
})

/**
 * The gateway's demo key (service tier); the mock ignores it. A fixed key in the form `sluice keys
 * create` prints (the gateway refuses SLUICE_DEMO_KEY values that do not look random).
 */
const API_KEY = 'sk-sluice-vhn9jUn3oaGiugXwZvmQGnaWd8IWwMPqPJBk1trVA1U'

/** POST a small chat completion and read the whole answer; allowed means HTTP 200. */
function chatOp(pool: Pool, path: string): Operation {
  const headers = { 'content-type': 'application/json', authorization: `Bearer ${API_KEY}` }
  return async () => {
    const res = await pool.request({ method: 'POST', path, headers, body: BODY })
    await res.body.text()
    return res.statusCode === 200
  }
}

/** A pool to a server; `base` is the path before /chat/completions (the mock's URL ends in /v1). */
function poolFor(url: string, base: string, connections: number): { pool: Pool; path: string } {
  const u = new URL(url)
  return {
    pool: new Pool(u.origin, { connections, pipelining: 1 }),
    path: `${base}/chat/completions`,
  }
}

async function run(ctx: BenchContext, id: GatewayRow): Promise<Section> {
  const inFlight = LOADS[id]
  const mock = await loadMockUpstream()
  if (!mock.ok) return { unavailable: [{ id, workload: 'gateway → mock upstream', reason: mock.reason }] }
  const gateway = await loadStartGateway()
  const redis = await ctx.redis()

  const direct: Contender = {
    name: 'mock upstream direct',
    async setup() {
      const upstream = await Worker.start(WORKER, { role: 'mock' })
      const mockUrl = upstream.info.url as string
      const { pool, path } = poolFor(mockUrl, new URL(mockUrl).pathname.replace(/\/$/, ''), inFlight)
      return {
        op: chatOp(pool, path),
        teardown: async () => {
          await pool.close()
          await upstream.stop()
        },
      }
    },
  }
  /** A server process (`role` of the worker) in front of its own mock upstream process. */
  const inFrontOfMock = (name: string, config: Record<string, unknown>): Contender => ({
    name,
    async setup() {
      const upstream = await Worker.start(WORKER, { role: 'mock' })
      const front = await Worker.start(WORKER, { ...config, upstreamUrl: upstream.info.url })
      const { pool, path } = poolFor(front.info.url as string, '/v1', inFlight)
      return {
        op: chatOp(pool, path),
        teardown: async () => {
          await pool.close()
          await front.stop()
          await upstream.stop()
        },
      }
    },
  })
  const through = (store: 'memory' | 'redis'): Contender =>
    inFrontOfMock(`gateway, ${store === 'memory' ? 'MemoryStore' : 'RedisStore'}`, {
      role: 'gateway',
      store,
      redisUrl: redis.url,
      apiKey: API_KEY,
    })
  const hop = inFrontOfMock('bare pass-through proxy', { role: 'passthrough' })

  const contenders = gateway.ok ? [through('memory'), through('redis'), hop, direct] : [direct]
  const measures = await contest(ctx, {
    id,
    contenders,
    inFlight,
    minWarmupMs: 2_000,
    reset: () => redis.flush(),
  })
  const baseline = measures[measures.length - 1]!
  const rows = gateway.ok
    ? [0, 1].map((i) => {
        const m = measures[i]!
        const odd = allowedNote([m, baseline], 'all')
        const bareHop = measures[2]!
        const added =
          `adds ${(m.p50Ms - baseline.p50Ms).toFixed(3)} ms at p50, ${(m.p99Ms - baseline.p99Ms).toFixed(3)} ms at p99; ` +
          `a bare pass-through proxy (Fastify + undici, no limits) adds ${(bareHop.p50Ms - baseline.p50Ms).toFixed(3)} / ${(bareHop.p99Ms - baseline.p99Ms).toFixed(3)} ms (${formatRate(bareHop.opsPerSec)} req/s)`
        return throughputRow(
          `gateway-${i === 0 ? 'memory' : 'redis'}`,
          `${m.name} → mock, ${inFlight} in flight`,
          [m],
          {
            unit: 'requests/s',
            baseline,
            note: [added, odd].filter(Boolean).join('; '),
          },
        )
      })
    : [
        throughputRow(id, `gateway → mock, ${inFlight} in flight`, [undefined], {
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
  title: 'gateway (startGateway) to its mock upstream vs the mock directly, memory and Redis, 16 in flight',
  needsRedis: true,
  run: (ctx) => run(ctx, 'gateway'),
}

export const gatewaySerial: Workload = {
  id: 'gateway-serial',
  title: 'latency the gateway adds, one request at a time, memory and Redis',
  needsRedis: true,
  run: (ctx) => run(ctx, 'gateway-serial'),
}
