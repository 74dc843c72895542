/**
 * The detectors' own work per request, alone in one process: for the prompts of the `detectors`
 * bench row (bench/harness/detector-gateway.ts, as the gateway reads them: model, newline, messages),
 * the check step (fingerprint, loop count, address) and the record step against a
 * MemoryDetectorStore holding one subject, every detector at its defaults. CPU time per request
 * (user + system), and the fingerprint alone.
 *
 *   npx tsx bench/detector-steps.ts [--requests 200000]
 */
import { parseArgs } from 'node:util'
import {
  checkStep,
  detectorSetFor,
  fingerprint,
  recordStep,
  resolveDetectors,
} from '../src/core/detectors/index.js'
import { MemoryDetectorStore } from '../src/store/detectors/memory.js'
import { DETECTORS } from './harness/detector-gateway.js'

const { values } = parseArgs({ options: { requests: { type: 'string' } } })
const N = Number(values.requests ?? 200_000)
const set = detectorSetFor(resolveDetectors(DETECTORS), 'service', 'bench')
const store = new MemoryDetectorStore()
const prompt = (n: number) => `gpt-4o-mini\nQuestion ${n}: say hello in ${n % 97} words, please.`
let raised = 0

function request(n: number): void {
  const step = checkStep(set, { prompt: prompt(n), address: '127.0.0.1', isKey: true })!
  raised += (store.check('key:bench', step) as { raised: unknown[] }).raised.length
  const record = recordStep(set, { tokens: 30, usd: 0.0001 }, 0.001)!
  raised += (store.record('key:bench', record) as unknown[]).length
}

function perRequestNs(run: (n: number) => void): number {
  for (let i = 0; i < 50_000; i++) run(i) // warm-up (JIT), and a full fingerprint ring
  const before = process.cpuUsage()
  for (let i = 0; i < N; i++) run(i)
  const used = process.cpuUsage(before)
  return ((used.user + used.system) * 1000) / N
}

let sink = 0
const steps = perRequestNs(request)
const fp = perRequestNs((n) => {
  sink += fingerprint(prompt(n)).hi
})
console.log(
  `check + record: ${steps.toFixed(0)} ns a request; fingerprint alone: ${fp.toFixed(0)} ns (${N} requests; ${raised} detections${sink === 0.5 ? '' : ''})`,
)
