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
 * 4,000 two counts of one checkout differed by 4–10 %, after 20,000 by under 0.5 %. V8's memory
 * reducer is off: it starts major GCs when the allocation rate per second is low, as it is for a
 * gateway under valgrind on a loaded machine (not for a busy one outside it), and two counts of
 * one checkout so went from 533k to 806k instructions a call as the machine's load rose (a full GC
 * forced before counting was worse: V8 then compiled again during the counted calls).
 *
 * With `--detectors` each checkout is counted twice, abuse detectors on and off, as the
 * `detectors` bench row runs them (bench/harness/detector-gateway.ts: its key, prompts varied call by
 * call so that no loop fires — the body differs per call on both sides —, every detector at its
 * defaults, a spend floor no call reaches). With `--store redis://…` the gateway keeps its state
 * in that Redis (use one nothing else uses: it is flushed before each count) instead of a
 * MemoryStore; only the gateway process is counted (redis-server's side: bench/detector-commands.ts
 * --instructions). `--in-flight N` sends the calls N at a time (16 by default; 1: one call at a
 * time, where nothing batches per event-loop turn). `--passthrough` also counts the bench's
 * pass-through proxy (bare Fastify + undici, bench/workers/passthrough.mjs) the same way.
 * `--keep <dir>` keeps each count's callgrind output there with V8's perf map of the process
 * (node --perf-basic-prof), which names the JIT code callgrind knows by address only
 * (bench/callgrind-names.ts). Counts with the detectors have still differed between runs of one checkout —
 * mostly within 2 %, once by 12 % and once by 60 % (a major GC among the counted calls or not,
 * most likely): count more than once (`--repeat`) before reading a few per cent.
 *
 *   npx tsx bench/gateway-instructions.ts [--warmup 20000] [--requests 5000] [--base <dir>] [--repeat 1]
 *                                         [--detectors] [--store memory|redis://127.0.0.1:6379]
 *                                         [--in-flight 16] [--passthrough] [--keep <dir>]
 */
import { linkSync, mkdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { Redis } from 'ioredis'
import { type Dispatcher, Pool } from 'undici'
import { generateApiKey } from '../src/http/keys.js'
import { ensureBuilt } from './harness/built.js'
import { CountedProcess } from './harness/callgrind.js'
import { sendCalls } from './harness/calls.js'
import { Worker } from './harness/child.js'
import { API_KEY, chatRequest, DETECTORS } from './harness/detector-gateway.js'
import { benchChatCall, benchGatewayConfig, benchGatewayEnv } from './harness/gateway-config.js'
import { loadAverages } from './harness/machine.js'

const { values } = parseArgs({
  options: {
    warmup: { type: 'string' },
    requests: { type: 'string' },
    base: { type: 'string' },
    repeat: { type: 'string' },
    detectors: { type: 'boolean' },
    store: { type: 'string' },
    'in-flight': { type: 'string' },
    passthrough: { type: 'boolean' },
    keep: { type: 'string' },
  },
})
const warmup = Number(values.warmup ?? 20000)
const requests = Number(values.requests ?? 5000)
const repeat = Number(values.repeat ?? 1)
const detectors = values.detectors === true
const redisUrl = values.store === undefined || values.store === 'memory' ? undefined : values.store
const IN_FLIGHT = Number(values['in-flight'] ?? 16)
const passthrough = values.passthrough === true
const keep = values.keep
if (keep !== undefined) mkdirSync(keep, { recursive: true })
const KEY = detectors ? API_KEY : generateApiKey()
const CALL = benchChatCall(KEY)
/** The n-th call: with --detectors the detectors row's (its prompt, so its body, varies per call). */
const callOf: (n: number) => Dispatcher.RequestOptions = detectors ? chatRequest : () => CALL
const WORKER = fileURLToPath(new URL('./workers/gateway-plain.mjs', import.meta.url))

const trees: [string, string][] = [['this tree', ensureBuilt(fileURLToPath(new URL('..', import.meta.url)))]]
if (values.base !== undefined) trees.push([values.base, ensureBuilt(values.base)])
/** What is counted: each checkout, with --detectors each with the detectors on and off. */
interface Variant {
  name: string
  root: string
  on: boolean
  /** The bench's pass-through proxy (bench/workers/passthrough.mjs) instead of a gateway. */
  passthrough?: boolean
}
const variants: Variant[] = trees.flatMap(([name, root]) =>
  detectors
    ? [
        { name: `${name}, detectors on`, root, on: true },
        { name: `${name}, detectors off`, root, on: false },
      ]
    : [{ name, root, on: false }],
)
if (passthrough) variants.push({ name: 'pass-through proxy', root: '', on: false, passthrough: true })
const mock = await Worker.start(new URL('./workers/gateway-server.ts', import.meta.url), {
  role: 'mock',
  sluice: trees[0]![1],
})
const admin = redisUrl === undefined ? undefined : new Redis(redisUrl)

/** Instructions of one gateway process while it served `calls` calls after `warmup` others. */
let saved = 0
async function count(v: Variant, calls: number): Promise<number> {
  await admin?.flushall()
  const config = {
    ...benchGatewayConfig(mock.info.url as string, 'unused'),
    // Under valgrind the gateway runs tens of times slower: no store call may time out.
    ...(redisUrl !== undefined && { store: { type: 'redis', url: redisUrl, timeout: 60_000 } }),
    ...(v.on && { detectors: DETECTORS }),
  }
  const args = JSON.stringify(
    v.passthrough ? { passthrough: mock.info.url } : { root: v.root, config, env: benchGatewayEnv(KEY) },
  )
  const nodeFlags = ['--no-memory-reducer', ...(keep === undefined ? [] : ['--perf-basic-prof'])]
  const gateway = CountedProcess.start([...nodeFlags, WORKER, args], ['ignore', 'pipe', 'pipe'])
  try {
    let text = ''
    const printed = (line: RegExp) =>
      new Promise<string>((resolve, reject) => {
        const seen = () => {
          const m = line.exec(text)
          if (m === null) return false
          text = text.slice(m.index + m[0].length)
          resolve(m[1] ?? '')
          return true
        }
        if (seen()) return
        const onData = (d: Buffer) => {
          text += d.toString()
          if (seen()) gateway.child.stdout!.off('data', onData)
        }
        gateway.child.stdout!.on('data', onData)
        gateway.child.once('exit', () => reject(new Error(`the gateway exited:\n${gateway.stderr}`)))
      })
    const url = await printed(/ready (\S+)\n/)
    // callgrind names JIT code by address only; V8's perf map (--perf-basic-prof) names it. A hard
    // link now: V8 keeps appending to the file, and the link survives whoever cleans /tmp.
    const file = keep === undefined ? undefined : join(keep, `${v.name.replace(/\W+/g, '-')}-${++saved}`)
    if (file !== undefined) linkSync(`/tmp/perf-${gateway.child.pid}.map`, `${file}.perf.map`)
    const pool = new Pool(url, { connections: IN_FLIGHT, pipelining: 1 })
    await sendCalls(pool, warmup, IN_FLIGHT, callOf)
    await gateway.counting(true)
    await sendCalls(pool, calls, IN_FLIGHT, (n) => callOf(warmup + n))
    await gateway.counting(false)
    await pool.close()
    const total = await gateway.total(() => gateway.child.kill('SIGTERM'))
    if (file !== undefined) {
      gateway.saveTo(`${file}.callgrind`)
      rmSync(`/tmp/perf-${gateway.child.pid}.map`, { force: true })
      process.stderr.write(`kept ${file}.callgrind and .perf.map\n`)
    }
    return total
  } finally {
    gateway.kill()
  }
}

const loadBefore = loadAverages()
const perCall = new Map<string, number[]>(variants.map((v) => [v.name, []]))
try {
  for (let r = 0; r < repeat; r++) {
    for (const v of r % 2 === 0 ? variants : [...variants].reverse()) {
      const value = (await count(v, requests)) / requests
      perCall.get(v.name)!.push(value)
      process.stderr.write(`${v.name}: ${Math.round(value).toLocaleString('en')} instructions per call\n`)
    }
  }
} finally {
  admin?.disconnect()
  await mock.stop()
}
const fmt = (xs: number[]) => xs.map((x) => Math.round(x).toLocaleString('en')).join(', ')
const ratios = (a: number[], b: number[], pct: boolean) =>
  a.map((x, i) => (pct ? `${((x / b[i]!) * 100).toFixed(1)} %` : `${(x / b[i]!).toFixed(3)}×`)).join(', ')
console.log(
  `| gateway | instructions per call (${repeat === 1 ? 'one count' : `each of ${repeat} counts`}) |`,
)
console.log('| --- | --- |')
for (const [name, xs] of perCall) console.log(`| ${name} | ${fmt(xs)} |`)
const of = (v: Variant) => perCall.get(v.name)!
if (detectors) {
  for (let t = 0; t < trees.length; t++) {
    const [on, off] = [of(variants[2 * t]!), of(variants[2 * t + 1]!)]
    const diff = on.map((x, i) => x - off[i]!)
    console.log(`\n${trees[t]![0]}: detectors on ÷ off ${ratios(on, off, false)}; on − off ${fmt(diff)}`)
  }
}
if (trees.length === 2) {
  const step = detectors ? 2 : 1
  for (let k = 0; k < step; k++) {
    const [a, b] = [of(variants[k]!), of(variants[step + k]!)]
    console.log(
      `${detectors ? (k === 0 ? 'detectors on, ' : 'detectors off, ') : '\n'}this tree / base: ${ratios(a, b, true)}`,
    )
  }
}
if (passthrough) {
  const pt = of(variants[variants.length - 1]!)
  for (const v of variants.slice(0, -1)) console.log(`${v.name} ÷ pass-through: ${ratios(of(v), pt, false)}`)
}
console.log(
  `${warmup} warm-up + ${requests} counted calls, ${IN_FLIGHT} in flight, ${redisUrl === undefined ? 'memory store' : 'Redis store'}, ledger on; load average before ${loadBefore}, after ${loadAverages()}`,
)
