/**
 * Gateway CPU time per request: the figure a shared machine disturbs least (time a process waited
 * for a core is not in it). The gateway (memory store, the `gateway` row's config: service tier with
 * huge limits, in-flight limit 100, ledger on) runs in its own process in front of the mock upstream
 * in another; this process sends a fixed number of non-streaming chat calls, 16 in flight, over
 * undici, and reads the gateway process's CPU time (user + system) around them.
 *
 * The gateways run sluice's built output (dist/, as `npm start` does), not the sources through
 * tsx: each checkout is built (`node scripts/build.mjs`) unless its dist/ is current.
 *
 * With `--base <dir>` (another checkout of sluice, e.g. `git archive main | tar -x -C /tmp/base`
 * with its node_modules linked), that checkout's gateway runs too; the bare Fastify + undici
 * pass-through proxy of the `gateway` row runs as the ceiling. In each round every server gets the
 * same number of calls at the same time (16 in flight each), so a change in the machine's load
 * during a round falls on all of them alike; the table gives medians and per-round ratios.
 *
 * `--store redis://host:port` runs the gateways on a RedisStore there (use a Redis nothing else
 * uses: it is flushed first) instead of the memory store, and this tree's gateway on the memory
 * store in the same rounds (the difference per round is what the Redis store costs); `--in-flight N` sends N calls at a time
 * (16 by default; 1 is the `gateway-serial` row's load); with `--store`, `--split` adds this tree's
 * gateway given a bare RedisStore (no outage policy, blocked-key cache or store metrics) and given
 * a memory store that waits for one Redis PING per op (the round trips alone); `--cpu-prof <dir>` starts this tree's
 * gateway with `--cpu-prof --cpu-prof-dir <dir>` (the profile is written when it stops).
 *
 *   npx tsx bench/gateway-cpu.ts [--rounds 5] [--requests 4000] [--base /tmp/base]
 *     [--store redis://127.0.0.1:6379 [--split]] [--in-flight 16] [--cpu-prof /tmp/prof]
 */
import { readFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { Pool } from 'undici'
import { generateApiKey } from '../src/http/keys.js'
import { ensureBuilt } from './harness/built.js'
import { sendCalls } from './harness/calls.js'
import { Worker } from './harness/child.js'
import { median } from './harness/latency.js'
import { loadAverages } from './harness/machine.js'

const { values } = parseArgs({
  options: {
    rounds: { type: 'string' },
    requests: { type: 'string' },
    base: { type: 'string' },
    store: { type: 'string' },
    'in-flight': { type: 'string' },
    'cpu-prof': { type: 'string' },
    split: { type: 'boolean' },
  },
})
const rounds = Number(values.rounds ?? 5)
const requests = Number(values.requests ?? 4000)
const IN_FLIGHT = Number(values['in-flight'] ?? 16)
const redisUrl = values.store
const KEY = generateApiKey()
const BODY = JSON.stringify({
  model: 'gpt-4o-mini',
  messages: [{ role: 'user', content: 'Say hello in five words.' }],
  max_tokens: 16,
})
const HEADERS = { 'content-type': 'application/json', authorization: `Bearer ${KEY}` }

/** The bench's one chat call. */
const CALL = { method: 'POST' as const, path: '/v1/chat/completions', headers: HEADERS, body: BODY }
const drive = (pool: Pool, count: number) => sendCalls(pool, count, IN_FLIGHT, () => CALL)

const here = new URL('./workers/gateway-server.ts', import.meta.url)
// The servers run sluice's built output (dist/), as `npm start` does: each checkout is built first
// unless its dist/ is current. The base's gateway runs in this tree's worker, on the base's build.
const thisTree = ensureBuilt(fileURLToPath(new URL('..', import.meta.url)))
const baseTree = values.base === undefined ? undefined : ensureBuilt(values.base)
const mock = await Worker.start(here, { role: 'mock', sluice: thisTree })
const upstreamUrl = mock.info.url as string
interface Contender {
  name: string
  worker: Worker
  pool: Pool
  cpuUs: number[]
  /** The kernel's share (system time) of each round's CPU time, from /proc (Linux; else NaN). */
  systemShare: number[]
  /** Times per request the process gave up its core (it waited for I/O: a wake-up each), from /proc. */
  switches: number[]
}
/** How many times a process gave up its core of its own accord so far (/proc/<pid>/status). */
function voluntarySwitches(pid: number | undefined): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    return Number(/^voluntary_ctxt_switches:\s*(\d+)/m.exec(status)![1])
  } catch {
    return Number.NaN
  }
}
/** A process's system CPU time and its user + system time, in clock ticks, from /proc/<pid>/stat. */
function ticks(pid: number | undefined): { system: number; total: number } {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
    return { system: Number(fields[12]), total: Number(fields[11]) + Number(fields[12]) }
  } catch {
    return { system: Number.NaN, total: Number.NaN }
  }
}
const contenders: Contender[] = []
const add = async (name: string, script: URL, config: Record<string, unknown>, execArgv: string[] = []) => {
  const worker = await Worker.start(script, { ...config, upstreamUrl }, execArgv)
  const pool = new Pool(worker.info.url as string, { connections: IN_FLIGHT, pipelining: 1 })
  contenders.push({ name, worker, pool, cpuUs: [], systemShare: [], switches: [] })
}
if (redisUrl !== undefined) {
  // The gateways share one Redis (their counters too: the limits are far above what a run sends).
  const { Redis } = await import('ioredis')
  const admin = new Redis(redisUrl)
  await admin.flushall()
  admin.disconnect()
}
const gatewayConfig = {
  role: 'gateway',
  sluice: thisTree,
  apiKey: KEY,
  // A store timeout far above the default 100 ms: on a loaded machine one slow answer would
  // otherwise turn the outage policy on (503s) and end the run; CPU per call does not depend on it.
  ...(redisUrl === undefined ? { store: 'memory' } : { store: 'redis', redisUrl, storeTimeoutMs: 5000 }),
}
const profile = values['cpu-prof'] === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', values['cpu-prof']]
try {
  await add('gateway (this tree)', here, gatewayConfig, profile)
  if (baseTree !== undefined)
    await add(`gateway (${values.base})`, here, { ...gatewayConfig, sluice: baseTree })
  // With Redis, this tree's gateway on the memory store runs in the same rounds: the Redis store's
  // own cost is the per-round difference.
  if (redisUrl !== undefined && values.split) {
    const bare = { role: 'gateway', sluice: thisTree, apiKey: KEY, redisUrl }
    await add('gateway (this tree, bare RedisStore given)', here, { ...bare, given: 'redis' })
    await add('gateway (this tree, memory store + a Redis PING per op)', here, { ...bare, given: 'ping' })
  }
  if (redisUrl !== undefined) {
    await add('gateway (this tree, memory store)', here, { ...gatewayConfig, store: 'memory' })
  }
  await add('pass-through proxy', here, { role: 'passthrough' })
  for (const c of contenders) await drive(c.pool, Math.min(requests, 3000)) // warm-up (JIT, pools)
  const loadBefore = loadAverages()
  for (let round = 1; round <= rounds; round++) {
    // All servers at once, each with its own lanes: whatever else the machine does in this round
    // (a shared machine's load moves CPU per request by ±20 % between rounds) falls on each alike.
    await Promise.all(
      contenders.map(async (c) => {
        const before = await c.worker.cpuMicros()
        const ticksBefore = ticks(c.worker.process.pid)
        const switchesBefore = voluntarySwitches(c.worker.process.pid)
        await drive(c.pool, requests)
        c.switches.push((voluntarySwitches(c.worker.process.pid) - switchesBefore) / requests)
        c.cpuUs.push(((await c.worker.cpuMicros()) - before) / requests)
        const ticksAfter = ticks(c.worker.process.pid)
        c.systemShare.push((ticksAfter.system - ticksBefore.system) / (ticksAfter.total - ticksBefore.total))
      }),
    )
    process.stderr.write(
      `round ${round}/${rounds}: ${contenders.map((c) => `${c.name} ${c.cpuUs.at(-1)!.toFixed(0)} µs/request`).join(', ')}\n`,
    )
  }
  console.log(
    `| server | CPU µs per request, median of ${rounds} | rounds | kernel's share (system time) | waits for I/O per request |`,
  )
  console.log('| --- | --- | --- | --- | --- |')
  for (const c of contenders) {
    console.log(
      `| ${c.name} | ${median(c.cpuUs).toFixed(0)} | ${c.cpuUs.map((x) => x.toFixed(0)).join(', ')} | ${(median(c.systemShare) * 100).toFixed(0)} % | ${median(c.switches).toFixed(2)} |`,
    )
  }
  const perRound = (a: Contender, b: Contender, what: (x: number, y: number) => string) =>
    a.cpuUs.map((x, i) => what(x, b.cpuUs[i]!)).join(', ')
  const [now, second] = contenders
  if (values.base !== undefined) {
    const ratios = perRound(now!, second!, (x, y) => `${((x / y) * 100).toFixed(1)} %`)
    console.log(`\nthis tree / base per round: ${ratios}`)
  }
  if (redisUrl !== undefined) {
    const memory = contenders.find((c) => c.name === 'gateway (this tree, memory store)')!
    const diffs = perRound(now!, memory, (x, y) => `${(x - y).toFixed(0)}`)
    console.log(`\nthis tree, Redis store minus memory store per round (µs per request): ${diffs}`)
  }
  console.log(
    `${requests} requests per turn, ${IN_FLIGHT} in flight, ${redisUrl === undefined ? 'memory store' : `Redis store (${redisUrl})`}; load average before ${loadBefore}, after ${loadAverages()}; ${cpus().length} cores`,
  )
} finally {
  for (const c of contenders) {
    await c.pool.close()
    await c.worker.stop()
  }
  await mock.stop()
}
