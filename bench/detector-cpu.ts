/**
 * What the abuse detectors cost the gateway in CPU per request, the figure a shared machine
 * disturbs least (time a process waited for a core is not in it): the gateway of the `detectors`
 * bench row (bench/workloads/detectors.ts: one key, varied prompts, every detector on, a spend
 * floor no call reaches) runs twice in processes of its own, detectors on and off, in front of one
 * mock upstream. In each round both get the same calls at the same time (16 in flight each), so a
 * change in the machine's load falls on both alike; the table gives the gateway process's CPU
 * (user + system) per call, medians and the on/off ratio of each round.
 *
 *   npx tsx bench/detector-cpu.ts [--store memory|redis://127.0.0.1:6379] [--rounds 5] [--requests 4000]
 *                                 [--profile <dir>]   (--cpu-prof of each gateway, in <dir>/on and <dir>/off)
 *                                 [--base <dir>]      (another checkout's gateway too, on and off, same rounds)
 *
 * On Redis both gateways use the given Redis (use one nothing else uses), each with its own prefix.
 */
import { cpus } from 'node:os'
import { parseArgs } from 'node:util'
import { Pool } from 'undici'
import { sendCalls } from './harness/calls.js'
import { Worker } from './harness/child.js'
import { median } from './harness/latency.js'
import { loadAverages } from './harness/machine.js'
import { API_KEY, chatRequest, DETECTORS } from './workloads/detectors.js'

const { values } = parseArgs({
  options: {
    store: { type: 'string' },
    rounds: { type: 'string' },
    requests: { type: 'string' },
    profile: { type: 'string' },
    base: { type: 'string' },
  },
})
const store = values.store ?? 'memory'
const rounds = Number(values.rounds ?? 5)
const requests = Number(values.requests ?? 4000)
const IN_FLIGHT = 16
const drive = (pool: Pool, count: number) => sendCalls(pool, count, IN_FLIGHT, chatRequest)

const here = new URL('./workers/gateway-server.ts', import.meta.url)
const trees: [string, URL][] = [['', here]]
if (values.base !== undefined) {
  const base = `file://${values.base.replace(/\/$/, '')}/bench/workers/gateway-server.ts`
  trees.push([`base `, new URL(base)])
}
const mock = await Worker.start(here, { role: 'mock' })
interface Side {
  name: string
  worker: Worker
  pool: Pool
  cpuUs: number[]
}
const sides: Side[] = []
try {
  for (const [tree, script] of trees)
    for (const on of [true, false]) {
      const worker = await Worker.start(
        script,
        {
          role: 'gateway',
          store: store === 'memory' ? 'memory' : 'redis',
          redisUrl: store === 'memory' ? undefined : store,
          // A loaded 2-core machine can hold a Redis answer past the default 100 ms: not an outage here.
          storeTimeoutMs: 5000,
          prefix: `sluice-cpu-${tree.trim()}${on ? 'on' : 'off'}:`,
          apiKey: API_KEY,
          upstreamUrl: mock.info.url,
          ...(on && { detectors: DETECTORS }),
        },
        values.profile === undefined
          ? []
          : ['--cpu-prof', `--cpu-prof-dir=${values.profile}/${tree.trim()}${on ? 'on' : 'off'}`],
      )
      const pool = new Pool(worker.info.url as string, { connections: IN_FLIGHT, pipelining: 1 })
      sides.push({ name: `${tree}detectors ${on ? 'on' : 'off'}`, worker, pool, cpuUs: [] })
    }
  for (const s of sides) await drive(s.pool, Math.min(requests, 3000)) // warm-up (JIT, pools)
  const loadBefore = loadAverages()
  for (let round = 1; round <= rounds; round++) {
    await Promise.all(
      sides.map(async (s) => {
        const before = await s.worker.cpuMicros()
        await drive(s.pool, requests)
        s.cpuUs.push(((await s.worker.cpuMicros()) - before) / requests)
      }),
    )
    process.stderr.write(
      `round ${round}/${rounds}: ${sides.map((s) => `${s.name} ${s.cpuUs.at(-1)!.toFixed(0)} µs/request`).join(', ')}\n`,
    )
  }
  console.log(
    `| gateway (${store === 'memory' ? 'MemoryStore' : 'RedisStore'}) | CPU µs per request, median of ${rounds} | rounds |`,
  )
  console.log('| --- | --- | --- |')
  for (const s of sides) {
    console.log(
      `| ${s.name} | ${median(s.cpuUs).toFixed(0)} | ${s.cpuUs.map((x) => x.toFixed(0)).join(', ')} |`,
    )
  }
  for (let t = 0; t < trees.length; t++) {
    const [on, off] = [sides[2 * t]!, sides[2 * t + 1]!]
    const ratios = on.cpuUs.map((x, i) => x / off.cpuUs[i]!)
    console.log(
      `\n${trees[t]![0]}on / off per round: ${ratios.map((r) => `${r.toFixed(3)}×`).join(', ')}; median ${median(ratios).toFixed(3)}×`,
    )
  }
  console.log(
    `${requests} requests per round, ${IN_FLIGHT} in flight each; load average before ${loadBefore}, after ${loadAverages()}; ${cpus().length} cores`,
  )
} finally {
  for (const s of sides) {
    await s.pool.close()
    await s.worker.stop()
  }
  await mock.stop()
}
