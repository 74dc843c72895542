import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { Pool } from 'undici'
import { loadMockUpstream, loadStartGateway } from '../adapters.js'
import { ensureBuilt } from '../harness/built.js'
import { Worker } from '../harness/child.js'
import { type Contender, contest } from '../harness/contest.js'
import type { Operation } from '../harness/drive.js'
import { formatRate } from '../harness/progress.js'
import { allowedNote, pairedRatio, throughputRow } from '../harness/rows.js'
import { serverCpu } from '../harness/server-cpu.js'
import type { BenchContext, Measure, Section, Workload } from '../harness/types.js'

const WORKER = new URL('../workers/gateway-server.ts', import.meta.url)
const ROOT = fileURLToPath(new URL('../..', import.meta.url))
/** Requests in flight: 16 and 32 for throughput under load; 1 for the latency the gateway adds alone. */
const LOADS = { gateway: 16, 'gateway-32': 32, 'gateway-serial': 1 } as const
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
function chatOp(pool: Pool, path: string, extraHeaders: Record<string, string> = {}): Operation {
  const headers = { 'content-type': 'application/json', authorization: `Bearer ${API_KEY}`, ...extraHeaders }
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

/** Portkey's gateway is a devDependency; without it the rows run without that contender. */
function portkeyAvailable(): { ok: true } | { ok: false; reason: string } {
  try {
    createRequire(import.meta.url).resolve('@portkey-ai/gateway/build/start-server.js')
    return { ok: true }
  } catch (error) {
    return {
      ok: false,
      reason: `@portkey-ai/gateway is not installed (${(error as Error).message.split('\n')[0]})`,
    }
  }
}

async function run(ctx: BenchContext, id: GatewayRow): Promise<Section> {
  const inFlight = LOADS[id]
  const mock = await loadMockUpstream()
  if (!mock.ok) return { unavailable: [{ id, workload: 'gateway → mock upstream', reason: mock.reason }] }
  const gateway = await loadStartGateway()
  const redis = await ctx.redis()
  // The mock and the gateway run sluice's built output (dist/), as `npm start` does.
  const sluice = ensureBuilt(ROOT)

  const direct: Contender = {
    name: 'mock upstream direct',
    async setup() {
      const upstream = await Worker.start(WORKER, { role: 'mock', sluice })
      const mockUrl = upstream.info.url as string
      const { pool, path } = poolFor(mockUrl, new URL(mockUrl).pathname.replace(/\/$/, ''), inFlight)
      return {
        op: chatOp(pool, path),
        ...serverCpu(upstream),
        teardown: async () => {
          await pool.close()
          await upstream.stop()
        },
      }
    },
  }
  /** A server process (`role` of the worker) in front of its own mock upstream process. */
  const inFrontOfMock = (
    name: string,
    config: Record<string, unknown>,
    headersFor?: (upstreamUrl: string) => Record<string, string>,
  ): Contender => ({
    name,
    async setup() {
      const upstream = await Worker.start(WORKER, { role: 'mock', sluice })
      const front = await Worker.start(WORKER, { ...config, upstreamUrl: upstream.info.url })
      const { pool, path } = poolFor(front.info.url as string, '/v1', inFlight)
      return {
        op: chatOp(pool, path, headersFor?.(upstream.info.url as string)),
        ...serverCpu(front),
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
      sluice,
      store,
      redisUrl: redis.url,
      apiKey: API_KEY,
    })
  const hop = inFrontOfMock('bare pass-through proxy', { role: 'passthrough' })
  // Portkey routes by request headers: the provider's dialect and, for a self-hosted server, its URL.
  const portkey = inFrontOfMock("Portkey's gateway", { role: 'portkey' }, (upstreamUrl) => ({
    'x-portkey-provider': 'openai',
    'x-portkey-custom-host': upstreamUrl.replace(/\/$/, ''),
  }))
  const peer = portkeyAvailable()

  const contenders = gateway.ok
    ? [through('memory'), through('redis'), hop, ...(peer.ok ? [portkey] : []), direct]
    : [direct]
  const measures = await contest(ctx, {
    id,
    contenders,
    inFlight,
    keepServers: { warmupMs: ctx.options.serverWarmupMs },
    reset: () => redis.flush(),
  })
  const mockDirect = measures[measures.length - 1]!
  const bareHop = measures[2]!
  const portkeyMeasure = peer.ok ? measures[3] : undefined
  const ms = (x: number) => x.toFixed(3)
  const cpuOf = (m: Measure) => m.extra?.serverCpuUsPerReq ?? Number.NaN
  const cpu = (m: Measure) => cpuOf(m).toFixed(0)
  /** a's CPU per request as a share of b's: the throughput b would reach where a reaches 100 %. */
  const cpuShare = (a: Measure, b: Measure) => ((100 * cpuOf(a)) / cpuOf(b)).toFixed(0)
  const rows = gateway.ok
    ? [0, 1].map((i) => {
        const m = measures[i]!
        const odd = allowedNote([m, bareHop, mockDirect, ...(portkeyMeasure ? [portkeyMeasure] : [])], 'all')
        const notes = [
          `${(pairedRatio(m, bareHop) * 100).toFixed(0)} % of the pass-through proxy (${formatRate(bareHop.opsPerSec)} req/s)`,
          `server CPU per request ${cpu(m)} µs vs the pass-through's ${cpu(bareHop)} µs (${cpuShare(bareHop, m)} %)${portkeyMeasure ? ` and Portkey's ${cpu(portkeyMeasure)} µs (${(cpuOf(portkeyMeasure) / cpuOf(m)).toFixed(1)}×)` : ''}`,
          `adds ${ms(m.p50Ms - bareHop.p50Ms)} ms at p50, ${ms(m.p99Ms - bareHop.p99Ms)} ms at p99 over the pass-through`,
          `over the mock called directly (${formatRate(mockDirect.opsPerSec)} req/s): sluice adds ${ms(m.p50Ms - mockDirect.p50Ms)} / ${ms(m.p99Ms - mockDirect.p99Ms)} ms, the pass-through ${ms(bareHop.p50Ms - mockDirect.p50Ms)} / ${ms(bareHop.p99Ms - mockDirect.p99Ms)} ms`,
          ...(portkeyMeasure
            ? [`Portkey p50/p99 ${ms(portkeyMeasure.p50Ms)} / ${ms(portkeyMeasure.p99Ms)} ms`]
            : [`Portkey: ${(peer as { reason: string }).reason}`]),
          odd,
        ]
        return throughputRow(
          `${id}-${i === 0 ? 'memory' : 'redis'}`,
          `gateway, ${i === 0 ? 'MemoryStore' : 'RedisStore'} → mock, ${inFlight} in flight`,
          [m, portkeyMeasure],
          {
            unit: 'requests/s',
            baseline: bareHop,
            references: [mockDirect],
            note: notes.filter(Boolean).join('; '),
          },
        )
      })
    : [
        throughputRow(id, `gateway → mock, ${inFlight} in flight`, [undefined], {
          unit: 'requests/s',
          baseline: mockDirect,
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

export const gateway32: Workload = {
  id: 'gateway-32',
  title: 'gateway (startGateway) vs a pass-through proxy and Portkey, memory and Redis, 32 in flight',
  needsRedis: true,
  run: (ctx) => run(ctx, 'gateway-32'),
}

export const gatewaySerial: Workload = {
  id: 'gateway-serial',
  title: 'latency the gateway adds, one request at a time, memory and Redis',
  needsRedis: true,
  run: (ctx) => run(ctx, 'gateway-serial'),
}
