/**
 * Gateway throughput with an API key from the control database (served by the in-process key
 * cache) against one from sluice.yaml, on the same gateway (SQLite control database on, a ledger
 * row per request for both), in front of a mock upstream in its own process; 16 requests in flight.
 * Each round runs both keys back to back, in alternating order (yaml then database, then database
 * then yaml…) so that a drift of the machine's load favours neither; the table shows the median of
 * the rounds and the median of the rounds' ratios, with the load average before and after (the
 * machine may be shared: a ratio measured under a high load says little). Then the one
 * step that differs, the identity step (key → tier and limits), in this process: `identify()` per
 * second for each key, in 20 interleaved rounds of 250 ms (less at the mercy of a loaded machine
 * than the HTTP rows).
 *
 *   npx tsx bench/gateway-keys.ts [--rounds 5] [--seconds 5]
 */
import { mkdtempSync } from 'node:fs'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { startGateway } from '../src/gateway/index.js'
import { generateApiKey } from '../src/http/keys.js'
import { load } from './harness/autocannon.js'
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

const upstream = await Worker.start(WORKER, { role: 'mock' })
const gateway = await Worker.start(WORKER, {
  role: 'gateway',
  store: 'memory',
  apiKey: YAML_KEY,
  database: true,
  upstreamUrl: upstream.info.url,
})
const url = `${gateway.info.url as string}/v1/chat/completions`
const keys = { 'sluice.yaml key': YAML_KEY, 'database key': gateway.info.databaseKey as string }
const results: Record<string, { rps: number[]; p50: number[]; p99: number[]; bad: number }> = {}
try {
  for (const [name, key] of Object.entries(keys)) {
    const headers = { 'content-type': 'application/json', authorization: `Bearer ${key}` }
    await load(url, 16, 2000, { method: 'POST', body: BODY, headers }) // warm-up
    results[name] = { rps: [], p50: [], p99: [], bad: 0 }
  }
  for (let round = 1; round <= rounds; round++) {
    const order = Object.entries(keys)
    if (round % 2 === 0) order.reverse()
    for (const [name, key] of order) {
      const headers = { 'content-type': 'application/json', authorization: `Bearer ${key}` }
      const r = await load(url, 16, seconds * 1000, { method: 'POST', body: BODY, headers })
      const row = results[name]!
      row.rps.push(r.requestsPerSec)
      row.p50.push(r.p50Ms)
      row.p99.push(r.p99Ms)
      row.bad += r.bad
      process.stderr.write(`round ${round}/${rounds} ${name}: ${r.requestsPerSec.toFixed(0)} req/s\n`)
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
const timed = async (key: string, ms: number) => {
  const req = request(key)
  let n = 0
  const until = performance.now() + ms
  while (performance.now() < until) {
    for (let i = 0; i < 200; i++) {
      const id = await inProcess.sluice.identify(req)
      if (id.identity === undefined) throw new Error('the key was refused')
    }
    n += 200
  }
  return n / (ms / 1000)
}
await timed(YAML_KEY, 500)
await timed(dbKey, 500)
for (let round = 0; round < 20; round++) {
  // Alternating which goes first, as above.
  if (round % 2 === 1) identifyRates['database key']!.push(await timed(dbKey, 250))
  identifyRates['sluice.yaml key']!.push(await timed(YAML_KEY, 250))
  if (round % 2 === 0) identifyRates['database key']!.push(await timed(dbKey, 250))
}
await inProcess.close()
const yamlIdentify = median(identifyRates['sluice.yaml key']!)
const identifyRatios = identifyRates['database key']!.map((r, i) => r / identifyRates['sluice.yaml key']![i]!)
console.log('')
console.log('| key from        | identify() per second (median of 20) | vs sluice.yaml key |')
console.log('| --------------- | ------------------------------------ | ------------------ |')
for (const [name, rates] of Object.entries(identifyRates)) {
  const rate = median(rates)
  console.log(
    `| ${name.padEnd(15)} | ${rate.toFixed(0).padStart(36)} | ${((rate / yamlIdentify) * 100).toFixed(1)} % |`,
  )
}
console.log(
  `median of the 20 rounds' ratios: ${(median(identifyRatios) * 100).toFixed(1)} %; per request, a database key costs ${((1 / median(identifyRates['database key']!) - 1 / yamlIdentify) * 1e6).toFixed(2)} µs more; load average now ${loadAverage()}`,
)
