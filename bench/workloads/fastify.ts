import { loadFastifyPlugin } from '../adapters.js'
import { load } from '../harness/autocannon.js'
import { Worker } from '../harness/child.js'
import { median } from '../harness/latency.js'
import { formatRate, progress } from '../harness/progress.js'
import { redisCpuTotalSeconds } from '../harness/redis-cost.js'
import { pairedRatio, throughputRow } from '../harness/rows.js'
import type { BenchContext, Measure, Section, ThroughputRow, Workload } from '../harness/types.js'
import type { FastifyVariant } from '../workers/fastify-server.js'

const WORKER = new URL('../workers/fastify-server.ts', import.meta.url)

const NAMES: Record<FastifyVariant, string> = {
  bare: 'bare Fastify',
  'bare-headers': "bare Fastify sending sluice's headers as constants",
  'bare-headers-direct': "bare Fastify sending sluice's headers as constants, as the reply's header object",
  'sluice-memory': 'sluice plugin, MemoryStore',
  'sluice-memory-ietf': 'sluice plugin, MemoryStore, IETF headers only',
  'sluice-memory-legacy': "sluice plugin, MemoryStore, the peer's headers only (X-RateLimit-*)",
  'sluice-redis': 'sluice plugin, RedisStore',
  'sluice-redis-legacy': "sluice plugin, RedisStore, the peer's headers only (X-RateLimit-*)",
  'peer-memory': '@fastify/rate-limit, memory',
  'peer-redis': '@fastify/rate-limit, Redis',
}

interface Acc {
  rates: number[]
  /** Server CPU per request (µs) of each round. */
  cpu: number[]
  /** redis-server's CPU per request (µs) of each round, user and kernel; variants on Redis only. */
  redisCpu: number[]
  p50: number[]
  p99: number[]
  bad: number
}

async function run(ctx: BenchContext): Promise<Section> {
  const { options } = ctx
  // Fresh server processes compile lazily: never measure their first second.
  const warmupMs = Math.max(options.warmupMs, 1_000)
  const redis = await ctx.redis()
  const plugin = await loadFastifyPlugin()
  const variants: FastifyVariant[] = ['bare', 'peer-memory', 'peer-redis']
  // bare-headers builds its headers with sluice's HTTP layer, there when the plugin is.
  if (plugin.ok) {
    variants.splice(
      1,
      0,
      'bare-headers',
      'sluice-memory',
      'sluice-memory-ietf',
      'sluice-memory-legacy',
      'sluice-redis',
      'sluice-redis-legacy',
    )
  }
  let headerCount = 0
  const acc = new Map<FastifyVariant, Acc>(
    variants.map((v) => [v, { rates: [], cpu: [], redisCpu: [], p50: [], p99: [], bad: 0 }]),
  )

  for (let round = 0; round < options.rounds; round++) {
    const order = round % 2 === 0 ? variants : [...variants].reverse()
    for (const variant of order) {
      const label = `fastify · ${NAMES[variant]} · round ${round + 1}/${options.rounds}`
      await redis.flush()
      const worker = await Worker.start(WORKER, { variant, redisUrl: redis.url })
      try {
        const url = worker.info.url as string
        if (variant === 'bare-headers') headerCount = Object.keys(worker.info.headers as object).length
        progress(`${label}: warm-up ${warmupMs} ms`)
        await load(url, options.inFlight, warmupMs)
        progress(`${label}: ${options.inFlight} connections for ${options.durationMs} ms (autocannon)`)
        const onRedis = variant.includes('-redis')
        const redisBefore = onRedis ? redisCpuTotalSeconds(await redis.info('cpu')) : 0
        const cpuBefore = await worker.cpuMicros()
        const r = await load(url, options.inFlight, options.durationMs)
        const cpu = ((await worker.cpuMicros()) - cpuBefore) / Math.max(1, r.ok)
        const a = acc.get(variant)!
        a.rates.push(r.requestsPerSec)
        a.cpu.push(cpu)
        if (onRedis) {
          // The same requests' work in redis-server: the peer's round trip per request costs Redis
          // (and the kernel) what sluice's shared script call does not, and the reverse.
          const redisCpu =
            ((redisCpuTotalSeconds(await redis.info('cpu')) - redisBefore) * 1e6) / Math.max(1, r.ok)
          a.redisCpu.push(redisCpu)
        }
        a.p50.push(r.p50Ms)
        a.p99.push(r.p99Ms)
        a.bad += r.bad
        progress(
          `${label}: ${formatRate(r.requestsPerSec)} req/s, p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms, server CPU ${cpu.toFixed(1)} µs/req` +
            (r.bad ? `, ${r.bad} non-2xx/errors` : ''),
        )
      } finally {
        await worker.stop()
      }
    }
  }

  const measure = (v: FastifyVariant): Measure => {
    const a = acc.get(v)!
    return {
      name: NAMES[v],
      opsPerSec: median(a.rates),
      roundsOpsPerSec: a.rates,
      p50Ms: median(a.p50),
      p99Ms: median(a.p99),
      extra: {
        nonOkResponses: a.bad,
        serverCpuUsPerReq: median(a.cpu),
        ...(a.redisCpu.length > 0 ? { redisCpuUsPerReq: median(a.redisCpu) } : {}),
        ...(v === 'bare-headers' ? { headers: headerCount } : {}),
      },
    }
  }
  const bare = measure('bare')
  const cpuOf = (m: Measure) => m.extra?.serverCpuUsPerReq ?? Number.NaN
  const pct = (m: Measure) => `${(pairedRatio(m, bare) * 100).toFixed(0)} %`
  const rows: ThroughputRow[] = []
  for (const store of ['memory', 'redis'] as const) {
    const peer = measure(`peer-${store}`)
    const sluice = plugin.ok ? measure(`sluice-${store}`) : undefined
    const lean = plugin.ok && store === 'memory' ? measure('sluice-memory-ietf') : undefined
    const legacy = plugin.ok ? measure(`sluice-${store}-legacy`) : undefined
    const floor = plugin.ok && store === 'memory' ? measure('bare-headers') : undefined
    const bad = [sluice, peer, lean, legacy, floor].filter((m) => m && (m.extra?.nonOkResponses ?? 0) > 0)
    const parts = [
      `of bare: sluice ${sluice ? pct(sluice) : 'n/a'}, peer ${pct(peer)} (bare ${formatRate(bare.opsPerSec)} req/s, p50/p99 ${bare.p50Ms}/${bare.p99Ms} ms)`,
      ...(lean
        ? [`sluice with the IETF headers only: ${formatRate(lean.opsPerSec)} req/s, ${pct(lean)} of bare`]
        : []),
      ...(legacy
        ? [
            `sluice with the peer's headers only: ${formatRate(legacy.opsPerSec)} req/s, ${pairedRatio(legacy, peer).toFixed(2)}× the peer`,
          ]
        : []),
      ...(floor && sluice
        ? [
            `bare Fastify sending the same ${headerCount} headers as constants: ${formatRate(floor.opsPerSec)} req/s, ${pct(floor)} of bare; sluice ${(pairedRatio(sluice, floor) * 100).toFixed(0)} % of it`,
          ]
        : []),
      `server CPU per request (µs, median of rounds): ${[
        ['bare', bare],
        ...(floor ? [['constant headers', floor]] : []),
        ['sluice', sluice],
        ...(legacy ? [["sluice, peer's headers", legacy]] : []),
        ['peer', peer],
      ]
        .filter((e): e is [string, Measure] => e[1] !== undefined)
        .map(([n, m]) => `${n} ${cpuOf(m).toFixed(1)}`)
        .join(
          ', ',
        )}${floor && sluice ? ` — sluice's own ${(((cpuOf(sluice) - cpuOf(floor)) / cpuOf(floor)) * 100).toFixed(1)} % over the constant headers` : ''}${legacy ? `; sluice (peer's headers) ÷ peer by CPU: ${(cpuOf(peer) / cpuOf(legacy)).toFixed(2)}×` : ''}${store === 'redis' && sluice ? `; sluice ÷ peer by CPU: ${(cpuOf(peer) / cpuOf(sluice)).toFixed(2)}×` : ''}`,
      ...(store === 'redis' ? [redisCpuNote(sluice, legacy, peer)] : []),
      ...bad.map((m) => `${m!.name}: ${m!.extra!.nonOkResponses} non-2xx/errors`),
    ]
    const row = throughputRow(
      `fastify-${store}`,
      `Fastify hello world + limiter, ${store === 'memory' ? 'memory' : 'Redis'}`,
      [sluice, peer],
      {
        unit: 'requests/s',
        note: parts.join('; '),
        baseline: bare,
        ...(floor ? { references: [floor] } : {}),
      },
    )
    if (lean && legacy) row.others = [lean, legacy]
    else if (legacy) row.others = [legacy]
    rows.push(row)
  }
  return {
    rows,
    ...(plugin.ok
      ? {}
      : {
          unavailable: [
            { id: 'fastify', workload: 'Fastify + sluice plugin (memory, Redis)', reason: plugin.reason },
          ],
        }),
  }
}

/**
 * The Redis row's whole cost per request: the server's CPU and redis-server's, user and kernel
 * both (a request's round trips cost system calls on both sides, which instruction counts miss).
 */
function redisCpuNote(sluice: Measure | undefined, legacy: Measure | undefined, peer: Measure): string {
  const server = (m: Measure) => m.extra?.serverCpuUsPerReq ?? Number.NaN
  const redis = (m: Measure) => m.extra?.redisCpuUsPerReq ?? Number.NaN
  const sum = (m: Measure) => server(m) + redis(m)
  const named: [string, Measure | undefined][] = [
    ['sluice', sluice],
    ["sluice, peer's headers", legacy],
    ['peer', peer],
  ]
  const parts = named
    .filter((e): e is [string, Measure] => e[1] !== undefined)
    .map(([n, m]) => `${n} ${redis(m).toFixed(1)} (sum ${sum(m).toFixed(1)})`)
  const ratios = [
    ...(sluice ? [`sluice ${(sum(peer) / sum(sluice)).toFixed(2)}×`] : []),
    ...(legacy ? [`with the peer's headers ${(sum(peer) / sum(legacy)).toFixed(2)}×`] : []),
  ]
  // As the ratios before it: the peer's cost ÷ sluice's, so above 1 means sluice costs less.
  return `redis-server CPU per request (µs, median of rounds; sum = server + redis-server): ${parts.join(', ')}; sluice ÷ peer by the sum: ${ratios.join(', ')}`
}

export const fastifyOverhead: Workload = {
  id: 'fastify',
  title: 'Fastify hello world: bare vs sluice plugin vs @fastify/rate-limit (memory and Redis), autocannon',
  needsRedis: true,
  run,
}
