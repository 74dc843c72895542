/**
 * What the abuse detectors cost the gateway: the same gateway in front of the same mock upstream,
 * detectors off and on (every detector, prompts varied so that no loop fires and a spend floor so
 * high that no spike fires: the rows measure the observing, not the refusing), memory and Redis.
 * Besides req/s (which swings by tens of percent between rounds on a small shared machine), each
 * row gives the CPU a request costs the gateway process and, on Redis, redis-server: where the
 * cores are the limit, req/s goes as the inverse of that sum (the mock upstream and the load
 * generator cost the same either way).
 */
import { fileURLToPath } from 'node:url'
import { Pool } from 'undici'
import { loadStartGateway } from '../adapters.js'
import { ensureBuilt } from '../harness/built.js'
import { Worker } from '../harness/child.js'
import { type Contender, contest } from '../harness/contest.js'
import type { Operation } from '../harness/drive.js'
import { redisCost } from '../harness/redis-cost.js'
import { allowedNote, throughputRow } from '../harness/rows.js'
import { readTogether, serverCpu } from '../harness/server-cpu.js'
import type { BenchContext, Measure, Section, Workload } from '../harness/types.js'

const WORKER = new URL('../workers/gateway-server.ts', import.meta.url)
const IN_FLIGHT = 16
export const API_KEY = 'sk-sluice-vhn9jUn3oaGiugXwZvmQGnaWd8IWwMPqPJBk1trVA1U'

/** The n-th call of the detectors' workload: varied prompts, so that no loop fires. */
export function chatRequest(n: number) {
  return {
    method: 'POST' as const,
    path: '/v1/chat/completions',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${API_KEY}` },
    body: JSON.stringify({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: `Question ${n}: say hello in ${n % 97} words, please.` }],
      max_tokens: 16,
    }),
  }
}
export const DETECTORS = { spend: { floorPerMinute: 1e12 } }

let counter = 0
function chatOp(pool: Pool): Operation {
  return async () => {
    const res = await pool.request(chatRequest(counter++))
    await res.body.text()
    return res.statusCode === 200
  }
}

async function run(ctx: BenchContext): Promise<Section> {
  const gateway = await loadStartGateway()
  if (!gateway.ok)
    return { unavailable: [{ id: 'detectors', workload: 'gateway detectors', reason: gateway.reason }] }
  const redis = await ctx.redis()
  // The mock and the gateway run sluice's built output (dist/), as `npm start` does.
  const sluice = ensureBuilt(fileURLToPath(new URL('../..', import.meta.url)))
  const contender = (store: 'memory' | 'redis', on: boolean): Contender => ({
    name: `gateway, ${store === 'memory' ? 'MemoryStore' : 'RedisStore'}, detectors ${on ? 'on' : 'off'}`,
    async setup() {
      const upstream = await Worker.start(WORKER, { role: 'mock', sluice })
      const front = await Worker.start(WORKER, {
        role: 'gateway',
        sluice,
        store,
        redisUrl: redis.url,
        apiKey: API_KEY,
        upstreamUrl: upstream.info.url,
        ...(on && { detectors: DETECTORS }),
      })
      const u = new URL(front.info.url as string)
      const pool = new Pool(u.origin, { connections: IN_FLIGHT, pipelining: 1 })
      return {
        op: chatOp(pool),
        ...readTogether(serverCpu(front), ...(store === 'redis' ? [redisCost(redis)] : [])),
        teardown: async () => {
          await pool.close()
          await front.stop()
          await upstream.stop()
        },
      }
    },
  })
  const contenders = [
    contender('memory', true),
    contender('memory', false),
    contender('redis', true),
    contender('redis', false),
  ]
  const m = await contest(ctx, {
    id: 'detectors',
    contenders,
    inFlight: IN_FLIGHT,
    keepServers: { warmupMs: ctx.options.serverWarmupMs },
    reset: () => redis.flush(),
  })
  const rows = (['memory', 'redis'] as const).map((store, i) => {
    const on = m[i * 2]!
    const off = m[i * 2 + 1]!
    return throughputRow(
      `detectors-${store}`,
      `gateway → mock, detectors on vs off (${store}), ${IN_FLIGHT} in flight`,
      [on],
      {
        unit: 'requests/s',
        baseline: off,
        note: [cpuNote(on, off, store === 'redis'), allowedNote([on, off], 'all')]
          .filter((n) => n !== undefined)
          .join('; '),
      },
    )
  })
  return { rows }
}

/** CPU per request (µs) with the detectors on and off, and their ratio. */
function cpuNote(on: Measure, off: Measure, redis: boolean): string {
  const gateway = (m: Measure) => m.extra?.serverCpuUsPerReq ?? Number.NaN
  const server = (m: Measure) => m.extra?.redisCpuUsPerOp ?? 0
  const sum = (m: Measure) => gateway(m) + (redis ? server(m) : 0)
  const us = (x: number) => x.toFixed(0)
  const parts = redis
    ? `gateway ${us(gateway(on))} vs ${us(gateway(off))}, redis-server ${us(server(on))} vs ${us(server(off))}, sum ${us(sum(on))} vs ${us(sum(off))} µs`
    : `gateway ${us(gateway(on))} vs ${us(gateway(off))} µs`
  return `CPU per request, on vs off (medians of rounds): ${parts} = ${(sum(on) / sum(off)).toFixed(3)}×`
}

export const detectorsOverhead: Workload = {
  id: 'detectors',
  title: 'gateway req/s with the abuse detectors on vs off, memory and Redis, 16 in flight',
  needsRedis: true,
  run,
}
