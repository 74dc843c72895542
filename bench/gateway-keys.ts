/**
 * Gateway throughput with an API key from the control database (served by the in-process key
 * cache) against one from sluice.yaml, on the same gateway (SQLite control database on, a ledger
 * row per request for both), in front of a mock upstream in its own process; 16 requests in flight.
 * Rounds alternate between the two keys; the table shows the median of the rounds.
 *
 *   npx tsx bench/gateway-keys.ts [--rounds 5] [--seconds 5]
 */
import { parseArgs } from 'node:util'
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
    for (const [name, key] of Object.entries(keys)) {
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
const yaml = median(results['sluice.yaml key']!.rps)
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
