/**
 * Instructions the gateway process executes per call, counted by valgrind's callgrind: unlike CPU
 * time, a count a busy shared machine does not move, so a few per cent between two checkouts can
 * be told apart. The gateway (the `gateway` row's config: memory store, limits and ledger on, from
 * sluice's built dist/) runs alone in a plain Node process (bench/workers/gateway-plain.mjs, no
 * tsx) under `valgrind --tool=callgrind --instr-atstart=no`, in front of the mock upstream in a
 * normal process; this process sends it `--warmup` calls, turns counting on (`callgrind_control
 * -i on`), sends `--requests` more, 16 in flight, turns counting off and stops it: the count is
 * of the measured calls alone (start-up and the warm-up's compilation left out; taking the
 * difference of two whole runs instead swung by 2x, the warm-up's share varying between runs).
 * With `--base <dir>` another checkout (built too) is counted the same way, and `--repeat N`
 * counts each N times, alternating the checkouts. Needs valgrind (with callgrind_control).
 *
 * The warm-up is long because V8 keeps compiling the gateway's code for thousands of calls: after
 * 4,000 two counts of one checkout differed by 4–10 %, after 20,000 by under 0.5 %.
 *
 *   npx tsx bench/gateway-instructions.ts [--warmup 20000] [--requests 5000] [--base <dir>] [--repeat 1]
 */
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { Pool } from 'undici'
import { generateApiKey } from '../src/http/keys.js'
import { ensureBuilt } from './harness/built.js'
import { CountedProcess } from './harness/callgrind.js'
import { sendCalls } from './harness/calls.js'
import { Worker } from './harness/child.js'
import { benchGatewayConfig, benchGatewayEnv } from './harness/gateway-config.js'
import { loadAverages } from './harness/machine.js'

const { values } = parseArgs({
  options: {
    warmup: { type: 'string' },
    requests: { type: 'string' },
    base: { type: 'string' },
    repeat: { type: 'string' },
  },
})
const warmup = Number(values.warmup ?? 20000)
const requests = Number(values.requests ?? 5000)
const repeat = Number(values.repeat ?? 1)
const IN_FLIGHT = 16
const KEY = generateApiKey()
const CALL = {
  method: 'POST' as const,
  path: '/v1/chat/completions',
  headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
  body: JSON.stringify({
    model: 'gpt-4o-mini',
    messages: [{ role: 'user', content: 'Say hello in five words.' }],
    max_tokens: 16,
  }),
}
const WORKER = fileURLToPath(new URL('./workers/gateway-plain.mjs', import.meta.url))

const trees: [string, string][] = [['this tree', ensureBuilt(fileURLToPath(new URL('..', import.meta.url)))]]
if (values.base !== undefined) trees.push([values.base, ensureBuilt(values.base)])
const mock = await Worker.start(new URL('./workers/gateway-server.ts', import.meta.url), {
  role: 'mock',
  sluice: trees[0]![1],
})

/** Instructions of one gateway process while it served `calls` calls after `warmup` others. */
async function count(root: string, calls: number): Promise<number> {
  const args = JSON.stringify({
    root,
    config: benchGatewayConfig(mock.info.url as string, 'unused'),
    env: benchGatewayEnv(KEY),
  })
  const gateway = CountedProcess.start([WORKER, args], ['ignore', 'pipe', 'pipe'])
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let text = ''
      gateway.child.stdout!.on('data', (d: Buffer) => {
        text += d.toString()
        const m = /ready (\S+)/.exec(text)
        if (m) resolve(m[1]!)
      })
      gateway.child.on('exit', () =>
        reject(new Error(`the gateway exited before it listened:\n${gateway.stderr}`)),
      )
    })
    const pool = new Pool(url, { connections: IN_FLIGHT, pipelining: 1 })
    await sendCalls(pool, warmup, IN_FLIGHT, () => CALL)
    await gateway.counting(true)
    await sendCalls(pool, calls, IN_FLIGHT, () => CALL)
    await gateway.counting(false)
    await pool.close()
    return await gateway.total(() => gateway.child.kill('SIGTERM'))
  } finally {
    gateway.kill()
  }
}

const loadBefore = loadAverages()
const perCall = new Map<string, number[]>(trees.map(([name]) => [name, []]))
try {
  for (let r = 0; r < repeat; r++) {
    for (const [name, root] of r % 2 === 0 ? trees : [...trees].reverse()) {
      const value = (await count(root, requests)) / requests
      perCall.get(name)!.push(value)
      process.stderr.write(`${name}: ${Math.round(value).toLocaleString('en')} instructions per call\n`)
    }
  }
} finally {
  await mock.stop()
}
console.log(
  `| gateway | instructions per call (${repeat === 1 ? 'one count' : `each of ${repeat} counts`}) |`,
)
console.log('| --- | --- |')
for (const [name, xs] of perCall) {
  console.log(`| ${name} | ${xs.map((x) => Math.round(x).toLocaleString('en')).join(', ')} |`)
}
if (trees.length === 2) {
  const [a, b] = [perCall.get(trees[0]![0])!, perCall.get(trees[1]![0])!]
  console.log(`\nthis tree / base: ${a.map((x, i) => `${((x / b[i]!) * 100).toFixed(1)} %`).join(', ')}`)
}
console.log(
  `${warmup} warm-up + ${requests} counted calls, ${IN_FLIGHT} in flight, memory store, ledger on; load average before ${loadBefore}, after ${loadAverages()}`,
)
