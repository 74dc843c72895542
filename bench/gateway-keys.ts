/**
 * Gateway throughput with an API key from the control database (served by the in-process key
 * cache) against one from sluice.yaml, on the same gateway (SQLite control database on, a ledger
 * row per request for both), in front of a mock upstream in its own process; 16 requests in flight.
 * Each round runs both keys back to back, in alternating order (yaml then database, then database
 * then yaml…) so that a drift of the machine's load favours neither; the table shows the median of
 * the rounds and the median of the rounds' ratios, with the load average before and after (the
 * machine may be shared: a ratio measured under a high load says little). Then the one
 * step that differs, the identity step (key → tier and limits), in this process: `identify()` per
 * second and CPU time per call for each key, in 40 interleaved rounds of 250 ms (less at the
 * mercy of a loaded machine than the HTTP rows; the CPU time leaves out the time the process
 * was not scheduled at all).
 *
 *   npx tsx bench/gateway-keys.ts [--rounds 5] [--seconds 5]
 */
import { mkdtempSync, readFileSync } from 'node:fs'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { startGateway } from '../src/gateway/index.js'
import { generateApiKey } from '../src/http/keys.js'
import { load } from './harness/autocannon.js'
import { ensureBuilt } from './harness/built.js'
import { Worker } from './harness/child.js'

const WORKER = new URL('./workers/gateway-server.ts', import.meta.url)
const YAML_KEY = generateApiKey()
const BODY = JSON.stringify({
  model: 'gpt-4o-mini',
  messages: [{ role: 'user', content: 'Say hello in five words.' }],
  max_tokens: 16,
})

const { values } = parseArgs({ options: { rounds: { type: 'string' }, seconds: { type: 'string' } } })
const rounds = Number(values.rounds ?? 5)
const seconds = Number(values.seconds ?? 5)
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const loadAverage = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')
const loadBefore = loadAverage()
/**
 * CPU seconds a process has used (Linux /proc, user + system; undefined elsewhere). Per request it
 * is the figure a shared machine disturbs least: time the process waited for a core is not in it.
 */
const cpuSecondsOf = (pid: number | undefined): number | undefined => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) / 100 // utime, stime in USER_HZ (100)
  } catch {
    return undefined
  }
}

// The mock and the gateway run sluice's built output (dist/), as `npm start` does.
const sluice = ensureBuilt(fileURLToPath(new URL('..', import.meta.url)))
const upstream = await Worker.start(WORKER, { role: 'mock', sluice })
const gateway = await Worker.start(WORKER, {
  role: 'gateway',
  sluice,
  store: 'memory',
  apiKey: YAML_KEY,
  database: true,
  upstreamUrl: upstream.info.url,
})
const url = `${gateway.info.url as string}/v1/chat/completions`
const keys = { 'sluice.yaml key': YAML_KEY, 'database key': gateway.info.databaseKey as string }
const results: Record<string, { rps: number[]; p50: number[]; p99: number[]; cpuUs: number[]; bad: number }> =
  {}
try {
  for (const [name, key] of Object.entries(keys)) {
    const headers = { 'content-type': 'application/json', authorization: `Bearer ${key}` }
    await load(url, 16, 2000, { method: 'POST', body: BODY, headers }) // warm-up
    results[name] = { rps: [], p50: [], p99: [], cpuUs: [], bad: 0 }
  }
  for (let round = 1; round <= rounds; round++) {
    const order = Object.entries(keys)
    if (round % 2 === 0) order.reverse()
    for (const [name, key] of order) {
      const headers = { 'content-type': 'application/json', authorization: `Bearer ${key}` }
      const cpuBefore = cpuSecondsOf(gateway.process.pid)
      const r = await load(url, 16, seconds * 1000, { method: 'POST', body: BODY, headers })
      const cpuAfter = cpuSecondsOf(gateway.process.pid)
      const row = results[name]!
      if (cpuBefore !== undefined && cpuAfter !== undefined && r.ok + r.bad > 0) {
        row.cpuUs.push(((cpuAfter - cpuBefore) * 1e6) / (r.ok + r.bad))
      }
      row.rps.push(r.requestsPerSec)
      row.p50.push(r.p50Ms)
      row.p99.push(r.p99Ms)
      row.bad += r.bad
      process.stderr.write(
        `round ${round}/${rounds} ${name}: ${r.requestsPerSec.toFixed(0)} req/s, gateway CPU ${row.cpuUs.at(-1)?.toFixed(0) ?? '?'} µs/request\n`,
      )
    }
  }
} finally {
  await gateway.stop()
  await upstream.stop()
}
const loadAfter = loadAverage()
const yaml = median(results['sluice.yaml key']!.rps)
const ratios = results['database key']!.rps.map((rps, i) => rps / results['sluice.yaml key']!.rps[i]!)
console.log(
  `| key from        | req/s (median of ${rounds}) | p50 ms | p99 ms | non-2xx | vs sluice.yaml key |`,
)
console.log('| --------------- | ------------------ | ------ | ------ | ------- | ------------------ |')
for (const [name, row] of Object.entries(results)) {
  const rps = median(row.rps)
  console.log(
    `| ${name.padEnd(15)} | ${rps.toFixed(0).padStart(18)} | ${median(row.p50)} | ${median(row.p99)} | ${row.bad} | ${((rps / yaml) * 100).toFixed(1)} % |`,
  )
}

console.log('')
console.log(
  `database key / sluice.yaml key per round: ${ratios.map((r) => `${(r * 100).toFixed(1)} %`).join(', ')}; median ${(median(ratios) * 100).toFixed(1)} %`,
)
const cpuDb = results['database key']!.cpuUs
const cpuYaml = results['sluice.yaml key']!.cpuUs
if (cpuDb.length === rounds && cpuYaml.length === rounds) {
  const cpuRatios = cpuDb.map((c, i) => c / cpuYaml[i]!)
  console.log(
    `gateway CPU per request (median of ${rounds}): sluice.yaml key ${median(cpuYaml).toFixed(0)} µs, database key ${median(cpuDb).toFixed(0)} µs; per round ${cpuRatios.map((r) => `${(r * 100).toFixed(1)} %`).join(', ')}; median ${(median(cpuRatios) * 100).toFixed(1)} %`,
  )
}
console.log(`load average (1, 5, 15 min) before: ${loadBefore}; after: ${loadAfter}; ${cpus().length} cores`)

// The identity step alone, in this process.
const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-keys-'))
const inProcess = await startGateway(
  { port: 0, ledger: { path: false }, database: { url: join(dir, 'sluice.db') }, log: { level: 'warn' } },
  { env: { SLUICE_DEMO_KEY: YAML_KEY } },
)
const dbKey = (
  await inProcess.control!.control.keys.create({ name: 'bench', tier: 'service' }, { actor: 'bench' })
).key
const request = (key: string) => ({
  method: 'POST',
  url: '/v1/chat/completions',
  headers: { authorization: `Bearer ${key}` },
  remoteAddress: '127.0.0.1',
})
const identifyRates: Record<string, number[]> = { 'sluice.yaml key': [], 'database key': [] }
/** CPU time of this process per identify() (µs): what a loaded machine's descheduling leaves out. */
const identifyCpu: Record<string, number[]> = { 'sluice.yaml key': [], 'database key': [] }
const timed = async (name: string, key: string, ms: number) => {
  const req = request(key)
  let n = 0
  const cpu = process.cpuUsage()
  const until = performance.now() + ms
  while (performance.now() < until) {
    for (let i = 0; i < 200; i++) {
      const id = await inProcess.sluice.identify(req)
      if (id.identity === undefined) throw new Error('the key was refused')
    }
    n += 200
  }
  const used = process.cpuUsage(cpu)
  identifyRates[name]!.push(n / (ms / 1000))
  identifyCpu[name]!.push((used.user + used.system) / n)
}
const ROUNDS = 40
await timed('sluice.yaml key', YAML_KEY, 500)
await timed('database key', dbKey, 500)
for (const rates of [...Object.values(identifyRates), ...Object.values(identifyCpu)]) rates.length = 0
for (let round = 0; round < ROUNDS; round++) {
  // Alternating which goes first, as above.
  if (round % 2 === 1) await timed('database key', dbKey, 250)
  await timed('sluice.yaml key', YAML_KEY, 250)
  if (round % 2 === 0) await timed('database key', dbKey, 250)
}
await inProcess.close()
const pairRatios = (xs: Record<string, number[]>) =>
  median(xs['database key']!.map((r, i) => r / xs['sluice.yaml key']![i]!))
console.log('')
console.log(
  `| key from        | identify() per second (median of ${ROUNDS}) | CPU µs per identify() (median) |`,
)
console.log('| --------------- | ------------------------------------ | ------------------------------ |')
for (const name of Object.keys(identifyRates)) {
  console.log(
    `| ${name.padEnd(15)} | ${median(identifyRates[name]!).toFixed(0).padStart(36)} | ${median(identifyCpu[name]!).toFixed(2).padStart(30)} |`,
  )
}
console.log(
  `database key / sluice.yaml key, median of the rounds' ratios: ${(pairRatios(identifyRates) * 100).toFixed(1)} % of the rate, ${(pairRatios(identifyCpu) * 100).toFixed(1)} % of the CPU time (${(median(identifyCpu['database key']!) - median(identifyCpu['sluice.yaml key']!)).toFixed(2)} µs more); load average now ${loadAverage()}`,
)
