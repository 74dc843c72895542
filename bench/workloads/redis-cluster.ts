import { readFile } from 'node:fs/promises'
import { Redis } from 'ioredis'
import { type RedisClusterServer, startRedisCluster } from '../../test/helpers/redis-cluster.js'
import { Worker } from '../harness/child.js'
import { describeMeasure } from '../harness/contest.js'
import { LatencySamples, median, percentiles } from '../harness/latency.js'
import { formatRate, progress } from '../harness/progress.js'
import { redisCpuSeconds } from '../harness/redis-cost.js'
import { throughputRow } from '../harness/rows.js'
import type { BenchContext, Measure, Section, Workload } from '../harness/types.js'

/** Client processes, the same for one node and for the cluster. */
const PROCESSES = 3
const WORKER = new URL('../workers/redis-client.ts', import.meta.url)
const SCRIPT_COMMANDS = ['evalsha', 'eval', 'fcall', 'fcall_ro', 'evalsha_ro', 'eval_ro']

/** What one Redis node did over the measured period. */
interface NodeCost {
  userSeconds: number
  sysSeconds: number
  scriptCalls: number
  /** Times the process was switched out (NaN where /proc cannot be read): each its own wake-up. */
  switches: number
}

/** Context switches of a local redis-server, from /proc (Linux). */
async function switchesOf(info: string): Promise<number> {
  const pid = /^process_id:(\d+)/m.exec(info)?.[1]
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8')
    const n = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1])
    return n('voluntary_ctxt_switches') + n('nonvoluntary_ctxt_switches')
  } catch {
    return Number.NaN
  }
}

function scriptCalls(info: string): number {
  let n = 0
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    if (SCRIPT_COMMANDS.includes(m[1]!)) n += Number(m[2])
  }
  return n
}

/** Admin connections to a set of nodes: flush them, and read their CPU and script calls. */
class Nodes {
  private readonly admins: Redis[]
  constructor(readonly urls: string[]) {
    this.admins = urls.map((u) => new Redis(u))
  }
  async flush(): Promise<void> {
    await Promise.all(
      this.admins.map(async (a) => {
        await a.flushall()
        await a.config('RESETSTAT')
      }),
    )
  }
  async snapshot(): Promise<NodeCost[]> {
    return Promise.all(
      this.admins.map(async (a) => {
        // User and kernel apart: the network's share shows in the latter.
        const cpu = redisCpuSeconds(await a.info('cpu'))
        return {
          userSeconds: cpu.user,
          sysSeconds: cpu.sys,
          scriptCalls: scriptCalls(await a.info('commandstats')),
          switches: await switchesOf(await a.info('server')),
        }
      }),
    )
  }
  close(): void {
    for (const a of this.admins) a.disconnect()
  }
}

/** One turn: PROCESSES client processes warmed up, then measured over the same period. */
async function turn(ctx: BenchContext, nodes: Nodes, cluster: boolean, label: string) {
  const { options } = ctx
  await nodes.flush()
  const config = cluster ? { nodes: nodes.urls } : { url: nodes.urls[0] }
  const workers = await Promise.all(
    Array.from({ length: PROCESSES }, () =>
      Worker.start(WORKER, {
        ...config,
        contender: 'sluice',
        inFlight: options.inFlight,
        keys: options.keys,
      }),
    ),
  )
  try {
    progress(`${label}: warm-up ${options.warmupMs} ms`)
    await Promise.all(
      workers.map((w) => w.request({ type: 'run', phase: 'warmup', durationMs: options.warmupMs })),
    )
    const before = await nodes.snapshot()
    progress(`${label}: measuring ${options.durationMs} ms`)
    const answers = await Promise.all(
      workers.map((w) => w.request({ type: 'run', phase: 'measure', durationMs: options.durationMs })),
    )
    const after = await nodes.snapshot()
    let rate = 0
    let ops = 0
    const latencies = new LatencySamples()
    for (const a of answers) {
      if (a.type !== 'done') throw new Error(`unexpected worker answer ${a.type}`)
      rate += (a.ops * 1000) / a.elapsedMs
      ops += a.completed ?? a.ops
      latencies.addAll(a.latencies)
    }
    // Per node, per decision made by all processes together (those that ended after the deadline
    // too: Redis did their work in the same period).
    const perNode = after.map((x, i) => ({
      cpuUs: ((x.userSeconds + x.sysSeconds - before[i]!.userSeconds - before[i]!.sysSeconds) * 1e6) / ops,
      sysUs: ((x.sysSeconds - before[i]!.sysSeconds) * 1e6) / ops,
      scripts: (x.scriptCalls - before[i]!.scriptCalls) / ops,
      switches: (x.switches - before[i]!.switches) / ops,
    }))
    return { rate, latencies, perNode }
  } finally {
    await Promise.all(workers.map((w) => w.stop()))
  }
}

async function run(ctx: BenchContext): Promise<Section> {
  const redis = await ctx.redis()
  let cluster: RedisClusterServer
  try {
    cluster = await startRedisCluster()
  } catch (error) {
    return {
      unavailable: [
        { id: 'redis-cluster', workload: 'RedisStore on a 3-node Redis Cluster', reason: String(error) },
      ],
    }
  }
  const single = new Nodes([redis.url])
  const three = new Nodes(cluster.nodes.map((n) => n.url))
  const acc = {
    one: {
      rates: [] as number[],
      latencies: new LatencySamples(),
      perNode: [] as { cpuUs: number; sysUs: number; scripts: number; switches: number }[][],
    },
    cluster: {
      rates: [] as number[],
      latencies: new LatencySamples(),
      perNode: [] as { cpuUs: number; sysUs: number; scripts: number; switches: number }[][],
    },
  }
  try {
    for (let round = 0; round < ctx.options.rounds; round++) {
      const order: ('one' | 'cluster')[] = round % 2 === 0 ? ['one', 'cluster'] : ['cluster', 'one']
      for (const which of order) {
        const label = `redis-cluster · ${which === 'one' ? 'one node' : '3-node cluster'} · ${PROCESSES} processes · round ${round + 1}/${ctx.options.rounds}`
        const r = await turn(ctx, which === 'one' ? single : three, which === 'cluster', label)
        acc[which].rates.push(r.rate)
        acc[which].latencies.addAll(r.latencies.toArray())
        acc[which].perNode.push(r.perNode)
        const cpu = r.perNode.map((n) => n.cpuUs.toFixed(2)).join(' + ')
        const sys = r.perNode.map((n) => n.sysUs.toFixed(2)).join(' + ')
        const switches = r.perNode.map((n) => (n.switches * 1000).toFixed(1)).join(' + ')
        progress(
          `${label}: ${describeMeasure({ opsPerSec: r.rate, ...percentiles(r.latencies) })}, Redis CPU µs/decision ${cpu} (of which kernel ${sys}), context switches per 1,000 decisions ${switches}`,
        )
      }
    }
  } finally {
    single.close()
    three.close()
    await cluster.stop()
  }

  const measure = (which: 'one' | 'cluster', name: string): Measure => {
    const a = acc[which]
    const nodes = a.perNode[0]!.length
    const extra: Record<string, number> = {}
    for (let i = 0; i < nodes; i++) {
      extra[`node${i + 1}RedisCpuUsPerOp`] = median(a.perNode.map((p) => p[i]!.cpuUs))
      extra[`node${i + 1}RedisSysUsPerOp`] = median(a.perNode.map((p) => p[i]!.sysUs))
      extra[`node${i + 1}ScriptCallsPerOp`] = median(a.perNode.map((p) => p[i]!.scripts))
      extra[`node${i + 1}SwitchesPerOp`] = median(a.perNode.map((p) => p[i]!.switches))
    }
    return { name, opsPerSec: median(a.rates), roundsOpsPerSec: a.rates, ...percentiles(a.latencies), extra }
  }
  const one = measure('one', `one Redis node, ${PROCESSES} client processes`)
  const three3 = measure('cluster', `3-node Redis Cluster, ${PROCESSES} client processes`)
  const of = (m: Measure, n: number, name: string) =>
    Array.from({ length: n }, (_, i) => m.extra![`node${i + 1}${name}PerOp`]!)
  const cpuOf = (m: Measure, n: number) => of(m, n, 'RedisCpuUs')
  const sysOf = (m: Measure, n: number) => of(m, n, 'RedisSysUs')
  const scriptsOf = (m: Measure, n: number) => of(m, n, 'ScriptCalls')
  const switchesOf1000 = (m: Measure, n: number) => of(m, n, 'Switches').map((x) => x * 1000)
  const oneCpu = cpuOf(one, 1)[0]!
  const clusterCpu = cpuOf(three3, 3)
  // Projection: each redis-server runs commands on one core; the busiest node saturates first.
  const capacityOne = 1e6 / oneCpu
  const capacityCluster = 1e6 / Math.max(...clusterCpu)
  const fmt = (xs: number[]) => xs.map((x) => x.toFixed(2)).join(' / ')
  const note = [
    `Redis CPU per decision (measured): one node ${oneCpu.toFixed(2)} µs; cluster nodes ${fmt(clusterCpu)} µs (sum ${clusterCpu.reduce((s, x) => s + x, 0).toFixed(2)}); of which in the kernel: one node ${sysOf(one, 1)[0]!.toFixed(2)} µs, cluster nodes ${fmt(sysOf(three3, 3))} µs`,
    `script calls per decision: one node ${scriptsOf(one, 1)[0]!.toPrecision(2)}, cluster ${scriptsOf(
      three3,
      3,
    )
      .reduce((s, x) => s + x, 0)
      .toPrecision(2)}`,
    `context switches of redis-server per 1,000 decisions: one node ${switchesOf1000(one, 1)[0]!.toFixed(1)}, cluster nodes ${switchesOf1000(
      three3,
      3,
    )
      .map((x) => x.toFixed(1))
      .join(' / ')}`,
    `projected with a core per Redis node and enough client cores (1 s of CPU per node per second): one node ${formatRate(capacityOne)}/s, cluster ${formatRate(capacityCluster)}/s = ${(capacityCluster / capacityOne).toFixed(2)}×`,
  ].join('; ')
  return {
    rows: [
      throughputRow(
        'redis-cluster',
        `RedisStore, one limit, 3-node cluster vs one node, ${PROCESSES} processes`,
        [three3],
        {
          baseline: one,
          note,
        },
      ),
    ],
  }
}

export const redisCluster: Workload = {
  id: 'redis-cluster',
  title: `RedisStore decisions/s on a 3-node Redis Cluster vs one node, ${PROCESSES} client processes each`,
  needsRedis: true,
  run,
}
