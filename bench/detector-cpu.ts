/**
 * What the abuse detectors cost the gateway in CPU per request, the figure a shared machine
 * disturbs least (time a process waited for a core is not in it): the gateway of the `detectors`
 * bench row (bench/harness/detector-gateway.ts: one key, varied prompts, every detector on, a
 * spend floor no call reaches) runs twice in processes of its own, detectors on and off, in front of one
 * mock upstream. In each round both get the same calls at the same time (16 in flight each), so a
 * change in the machine's load falls on both alike; the table gives the gateway process's CPU
 * (user + system) per call, medians and the on/off ratio of each round.
 *
 * On Redis the request's work is split between the gateway and redis-server, so redis-server's CPU
 * per call is read too (INFO cpu, used_cpu_user + used_cpu_sys, before and after each side's part
 * of a round) and the table gives gateway, Redis and their sum: on a machine whose cores are the
 * limit, the requests per second a gateway allows go as the inverse of that sum.
 *
 *   npx tsx bench/detector-cpu.ts [--store memory|redis://127.0.0.1:6379[,redis://…]] [--rounds 5]
 *                                 [--requests 4000]
 *                                 [--profile <dir>]   (--cpu-prof of each gateway, in <dir>/on and <dir>/off)
 *                                 [--base <dir>]      (another checkout's gateway too, on and off, same rounds)
 *
 * The gateways run sluice's built output (dist/, as `npm start` does), each checkout built first
 * (`node scripts/build.mjs`) unless its dist/ is current.
 *
 * On Redis, use servers nothing else uses; each gateway has its own prefix. With one Redis per side
 * (as many URLs as sides: on, off, then base on, base off) the sides run at the same time; when
 * sides share a Redis its CPU cannot be told apart, so each round runs them one after another (the
 * order turned round every round).
 */
import { cpus } from 'node:os'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { Redis } from 'ioredis'
import { Pool } from 'undici'
import { ensureBuilt } from './harness/built.js'
import { sendCalls } from './harness/calls.js'
import type { Worker } from './harness/child.js'
import {
  chatRequest,
  DETECTOR_IN_FLIGHT,
  startDetectorGateway,
  startDetectorMock,
} from './harness/detector-gateway.js'
import { median } from './harness/latency.js'
import { loadAverages } from './harness/machine.js'
import { ratiosText, roundRatios, together } from './harness/side-by-side.js'

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
const redisUrls = store === 'memory' ? [] : store.split(',')
const rounds = Number(values.rounds ?? 5)
const requests = Number(values.requests ?? 4000)
const drive = (pool: Pool, count: number) => sendCalls(pool, count, DETECTOR_IN_FLIGHT, chatRequest)

// The gateways run sluice's built output (dist/), as `npm start` does: each checkout is built first
// unless its dist/ is current; the base's gateway runs in this tree's worker, on the base's build.
const trees: [string, string][] = [['', ensureBuilt(fileURLToPath(new URL('..', import.meta.url)))]]
if (values.base !== undefined) trees.push(['base ', ensureBuilt(values.base)])
const mock = await startDetectorMock(trees[0]![1])
interface Side {
  name: string
  worker: Worker
  pool: Pool
  /** Its Redis (an admin connection), when the store is Redis. */
  redis: Redis | undefined
  /** CPU µs per call: the gateway process's, and redis-server's (Redis only). */
  cpuUs: number[]
  redisUs: number[]
}
const admins = new Map(redisUrls.map((u) => [u, new Redis(u)]))
const shared = redisUrls.length > 0 && redisUrls.length < trees.length * 2
const sides: Side[] = []
try {
  for (const [tree, sluice] of trees)
    for (const on of [true, false]) {
      const redisUrl = redisUrls.length === 0 ? undefined : redisUrls[sides.length % redisUrls.length]!
      const side = `${tree.trim()}${on ? 'on' : 'off'}`
      const worker = await startDetectorGateway({
        sluice,
        upstreamUrl: mock.info.url as string,
        on,
        redisUrl,
        prefix: `sluice-cpu-${side}:`,
        execArgv:
          values.profile === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${values.profile}/${side}`],
      })
      const pool = new Pool(worker.info.url as string, { connections: DETECTOR_IN_FLIGHT, pipelining: 1 })
      const redis = redisUrl === undefined ? undefined : admins.get(redisUrl)
      const name = `${tree}detectors ${on ? 'on' : 'off'}`
      sides.push({ name, worker, pool, redis, cpuUs: [], redisUs: [] })
    }
  for (const s of sides) await drive(s.pool, Math.min(requests, 3000)) // warm-up (JIT, pools)
  const loadBefore = loadAverages()
  /** A round of these sides at the same time (one side alone when they share a Redis). */
  const measure = async (some: Side[]) => {
    const turns = await together(some, (s) => drive(s.pool, requests))
    turns.forEach((t, i) => {
      some[i]!.cpuUs.push(t.serverUs / requests)
      if (some[i]!.redis !== undefined) some[i]!.redisUs.push(t.redisUs / requests)
    })
  }
  for (let round = 1; round <= rounds; round++) {
    if (!shared) await measure(sides)
    else for (const s of round % 2 === 1 ? sides : [...sides].reverse()) await measure([s])
    const shown = (s: Side) =>
      s.redis === undefined
        ? `${s.cpuUs.at(-1)!.toFixed(0)}`
        : `${s.cpuUs.at(-1)!.toFixed(0)} + ${s.redisUs.at(-1)!.toFixed(0)}`
    process.stderr.write(
      `round ${round}/${rounds}: ${sides.map((s) => `${s.name} ${shown(s)} µs/request`).join(', ')}\n`,
    )
  }
  const onRedis = redisUrls.length > 0
  const total = (s: Side) => s.cpuUs.map((x, i) => x + (s.redisUs[i] ?? 0))
  const cells = (xs: number[]) => [median(xs).toFixed(0), xs.map((x) => x.toFixed(0)).join(', ')]
  console.log(
    onRedis
      ? `| RedisStore, CPU µs per request (median of ${rounds}; rounds) | gateway | | redis-server | | sum | |`
      : `| MemoryStore, CPU µs per request (median of ${rounds}; rounds) | gateway | |`,
  )
  console.log(onRedis ? '| --- | --- | --- | --- | --- | --- | --- |' : '| --- | --- | --- |')
  for (const s of sides) {
    const row = onRedis ? [...cells(s.cpuUs), ...cells(s.redisUs), ...cells(total(s))] : cells(s.cpuUs)
    console.log(`| ${s.name} | ${row.join(' | ')} |`)
  }
  const ratioLine = (what: string, on: number[], off: number[]) =>
    `${what} on / off per round: ${ratiosText(roundRatios(on, off))}`
  for (let t = 0; t < trees.length; t++) {
    const [on, off] = [sides[2 * t]!, sides[2 * t + 1]!]
    const tree = trees[t]![0]
    console.log(`\n${ratioLine(`${tree}gateway`, on.cpuUs, off.cpuUs)}`)
    if (onRedis) {
      console.log(ratioLine(`${tree}redis-server`, on.redisUs, off.redisUs))
      console.log(ratioLine(`${tree}gateway + redis-server`, total(on), total(off)))
    }
  }
  const how = shared ? 'one side after another (they share a Redis)' : 'at the same time'
  console.log(
    `${requests} requests per round, ${DETECTOR_IN_FLIGHT} in flight each, sides ${how}; load average before ${loadBefore}, after ${loadAverages()}; ${cpus().length} cores`,
  )
} finally {
  for (const s of sides) {
    await s.pool.close()
    await s.worker.stop()
  }
  for (const a of admins.values()) a.disconnect()
  await mock.stop()
}
