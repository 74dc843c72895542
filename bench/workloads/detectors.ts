/**
 * What the abuse detectors cost the gateway: the same gateway in front of the same mock upstream,
 * detectors off and on (every detector, prompts varied so that no loop fires and a spend floor so
 * high that no spike fires: the rows measure the observing, not the refusing), memory and Redis.
 */
import { Pool } from 'undici'
import { loadStartGateway } from '../adapters.js'
import { Worker } from '../harness/child.js'
import { type Contender, contest } from '../harness/contest.js'
import type { Operation } from '../harness/drive.js'
import { allowedNote, throughputRow } from '../harness/rows.js'
import type { BenchContext, Section, Workload } from '../harness/types.js'

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
  const contender = (store: 'memory' | 'redis', on: boolean): Contender => ({
    name: `gateway, ${store === 'memory' ? 'MemoryStore' : 'RedisStore'}, detectors ${on ? 'on' : 'off'}`,
    async setup() {
      const upstream = await Worker.start(WORKER, { role: 'mock' })
      const front = await Worker.start(WORKER, {
        role: 'gateway',
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
        note: allowedNote([on, off], 'all'),
      },
    )
  })
  return { rows }
}

export const detectorsOverhead: Workload = {
  id: 'detectors',
  title: 'gateway req/s with the abuse detectors on vs off, memory and Redis, 16 in flight',
  needsRedis: true,
  run,
}
