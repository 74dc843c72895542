/**
 * Gateway CPU time per request: the figure a shared machine disturbs least (time a process waited
 * for a core is not in it). The gateway (memory store, the `gateway` row's config: service tier with
 * huge limits, in-flight limit 100, ledger on) runs in its own process in front of the mock upstream
 * in another; this process sends a fixed number of non-streaming chat calls, 16 in flight, over
 * undici, and reads the gateway process's CPU time (user + system) around them.
 *
 * With `--base <dir>` (another checkout of sluice, e.g. `git archive main | tar -x -C /tmp/base`
 * with its node_modules linked), that checkout's gateway runs too; the bare Fastify + undici
 * pass-through proxy of the `gateway` row runs as the ceiling. In each round every server gets the
 * same number of calls at the same time (16 in flight each), so a change in the machine's load
 * during a round falls on all of them alike; the table gives medians and per-round ratios.
 *
 *   npx tsx bench/gateway-cpu.ts [--rounds 5] [--requests 4000] [--base /tmp/base]
 */
import { cpus, loadavg } from 'node:os'
import { parseArgs } from 'node:util'
import { Pool } from 'undici'
import { generateApiKey } from '../src/http/keys.js'
import { Worker } from './harness/child.js'

const { values } = parseArgs({
  options: { rounds: { type: 'string' }, requests: { type: 'string' }, base: { type: 'string' } },
})
const rounds = Number(values.rounds ?? 5)
const requests = Number(values.requests ?? 4000)
const IN_FLIGHT = 16
const KEY = generateApiKey()
const BODY = JSON.stringify({
  model: 'gpt-4o-mini',
  messages: [{ role: 'user', content: 'Say hello in five words.' }],
  max_tokens: 16,
})
const HEADERS = { 'content-type': 'application/json', authorization: `Bearer ${KEY}` }
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const loadAverage = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')

/** Sends `count` calls, IN_FLIGHT at a time; throws on any answer but 200 (the figures would lie). */
async function drive(pool: Pool, count: number): Promise<void> {
  let left = count
  const lane = async () => {
    while (left-- > 0) {
      const r = await pool.request({
        method: 'POST',
        path: '/v1/chat/completions',
        headers: HEADERS,
        body: BODY,
      })
      await r.body.text()
      if (r.statusCode !== 200) throw new Error(`status ${r.statusCode}`)
    }
  }
  await Promise.all(Array.from({ length: IN_FLIGHT }, lane))
}

const here = new URL('./workers/gateway-server.ts', import.meta.url)
const mock = await Worker.start(here, { role: 'mock' })
const upstreamUrl = mock.info.url as string
interface Contender {
  name: string
  worker: Worker
  pool: Pool
  cpuUs: number[]
}
const contenders: Contender[] = []
const add = async (name: string, script: URL, config: Record<string, unknown>) => {
  const worker = await Worker.start(script, { ...config, upstreamUrl })
  const pool = new Pool(worker.info.url as string, { connections: IN_FLIGHT, pipelining: 1 })
  contenders.push({ name, worker, pool, cpuUs: [] })
}
const gatewayConfig = { role: 'gateway', store: 'memory', apiKey: KEY }
try {
  await add('gateway (this tree)', here, gatewayConfig)
  if (values.base !== undefined) {
    const base = new URL(`file://${values.base.replace(/\/$/, '')}/bench/workers/gateway-server.ts`)
    await add(`gateway (${values.base})`, base, gatewayConfig)
  }
  await add('pass-through proxy', here, { role: 'passthrough' })
  for (const c of contenders) await drive(c.pool, Math.min(requests, 3000)) // warm-up (JIT, pools)
  const loadBefore = loadAverage()
  for (let round = 1; round <= rounds; round++) {
    // All servers at once, each with its own lanes: whatever else the machine does in this round
    // (a shared machine's load moves CPU per request by ±20 % between rounds) falls on each alike.
    await Promise.all(
      contenders.map(async (c) => {
        const before = await c.worker.cpuMicros()
        await drive(c.pool, requests)
        c.cpuUs.push(((await c.worker.cpuMicros()) - before) / requests)
      }),
    )
    process.stderr.write(
      `round ${round}/${rounds}: ${contenders.map((c) => `${c.name} ${c.cpuUs.at(-1)!.toFixed(0)} µs/request`).join(', ')}\n`,
    )
  }
  console.log(`| server | CPU µs per request, median of ${rounds} | rounds |`)
  console.log('| --- | --- | --- |')
  for (const c of contenders) {
    console.log(
      `| ${c.name} | ${median(c.cpuUs).toFixed(0)} | ${c.cpuUs.map((x) => x.toFixed(0)).join(', ')} |`,
    )
  }
  if (contenders.length === 3) {
    const [now, base] = contenders
    const ratios = now!.cpuUs.map((x, i) => x / base!.cpuUs[i]!)
    console.log(`\nthis tree / base per round: ${ratios.map((r) => `${(r * 100).toFixed(1)} %`).join(', ')}`)
  }
  console.log(
    `${requests} requests per turn, ${IN_FLIGHT} in flight; load average before ${loadBefore}, after ${loadAverage()}; ${cpus().length} cores`,
  )
} finally {
  for (const c of contenders) {
    await c.pool.close()
    await c.worker.stop()
  }
  await mock.stop()
}
