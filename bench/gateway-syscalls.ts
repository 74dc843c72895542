/**
 * System calls the gateway process makes per call, counted by `strace -f -c` (every thread: the
 * main thread, libuv's threadpool, V8's workers), next to the bench's pass-through proxy (bare
 * Fastify + undici, bench/workers/passthrough.mjs) counted the same way. Each server (the `gateway`
 * row's config: memory store, limits and ledger on, from sluice's built dist/) runs alone in a
 * plain Node process (bench/workers/gateway-plain.mjs) in front of the mock upstream; this process
 * sends it `--warmup` calls, attaches strace, sends `--requests` more `--in-flight` at a time, and
 * detaches. One call at a time, a system call is work nothing batches: the counts say where a lone
 * call's CPU goes beyond JavaScript (see bench/gateway-instructions.ts for instructions).
 *
 *   npx tsx bench/gateway-syscalls.ts [--warmup 5000] [--requests 2000] [--in-flight 1] [--base <dir>]
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { Pool } from 'undici'
import { generateApiKey } from '../src/http/keys.js'
import { ensureBuilt } from './harness/built.js'
import { sendCalls } from './harness/calls.js'
import { Worker } from './harness/child.js'
import { benchChatCall, benchGatewayConfig, benchGatewayEnv } from './harness/gateway-config.js'

const { values } = parseArgs({
  options: {
    warmup: { type: 'string' },
    requests: { type: 'string' },
    'in-flight': { type: 'string' },
    base: { type: 'string' },
  },
})
const warmup = Number(values.warmup ?? 5000)
const requests = Number(values.requests ?? 2000)
const inFlight = Number(values['in-flight'] ?? 1)
const KEY = generateApiKey()
const CALL = benchChatCall(KEY)
const WORKER = fileURLToPath(new URL('./workers/gateway-plain.mjs', import.meta.url))

const trees: [string, string][] = [['this tree', ensureBuilt(fileURLToPath(new URL('..', import.meta.url)))]]
if (values.base !== undefined) trees.push([values.base, ensureBuilt(values.base)])
const mock = await Worker.start(new URL('./workers/gateway-server.ts', import.meta.url), {
  role: 'mock',
  sluice: trees[0]![1],
})

/** The first line a child prints that matches `line` (its first group). */
function printed(child: ChildProcess, line: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = ''
    const onData = (d: Buffer) => {
      text += d.toString()
      const m = line.exec(text)
      if (m === null) return
      child.stdout!.off('data', onData)
      resolve(m[1] ?? '')
    }
    child.stdout!.on('data', onData)
    child.once('exit', () => reject(new Error(`the server exited before printing ${line}`)))
  })
}

/** System calls by name, of one server while it served `requests` calls after `warmup` others. */
async function count(args: unknown): Promise<Map<string, number>> {
  const server = spawn(process.execPath, [WORKER, JSON.stringify(args)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const dir = mkdtempSync(join(tmpdir(), 'sluice-strace-'))
  try {
    const url = await printed(server, /ready (\S+)\n/)
    const pool = new Pool(url, { connections: inFlight, pipelining: 1 })
    await sendCalls(pool, warmup, inFlight, () => CALL)
    const out = join(dir, 'summary')
    const strace = spawn('strace', ['-f', '-c', '-o', out, '-p', String(server.pid)], {
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    // strace says on stderr when it has attached to every thread ("Process N attached").
    await new Promise<void>((resolve) => {
      let seen = ''
      strace.stderr!.on('data', (d: Buffer) => {
        seen += d.toString()
        if (/attached/.test(seen)) resolve()
      })
    })
    await new Promise((r) => setTimeout(r, 500))
    await sendCalls(pool, requests, inFlight, () => CALL)
    await pool.close()
    const detached = once(strace, 'exit')
    strace.kill('SIGINT')
    await detached
    const counts = new Map<string, number>()
    for (const line of readFileSync(out, 'utf8').split('\n')) {
      // % time, seconds, usecs/call, calls, [errors], syscall
      const m = /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)\s*$/.exec(line)
      if (m !== null && m[2] !== 'total') counts.set(m[2]!, Number(m[1]))
    }
    return counts
  } finally {
    server.kill('SIGTERM')
    rmSync(dir, { recursive: true, force: true })
  }
}

const results: [string, Map<string, number>][] = []
try {
  for (const [name, root] of trees) {
    const ledgerPath = 'unused' // gateway-plain.mjs puts the ledger in a directory of its own
    const config = benchGatewayConfig(mock.info.url as string, ledgerPath)
    results.push([name, await count({ root, config, env: benchGatewayEnv(KEY) })])
  }
  results.push(['pass-through proxy', await count({ passthrough: mock.info.url })])
} finally {
  await mock.stop()
}
const names = [...new Set(results.flatMap(([, m]) => [...m.keys()]))]
const per = (m: Map<string, number>, k: string) => ((m.get(k) ?? 0) / requests).toFixed(2)
const total = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0)
names.sort((a, b) => (results[0]![1].get(b) ?? 0) - (results[0]![1].get(a) ?? 0))
console.log(`| system calls per call | ${results.map(([n]) => n).join(' | ')} |`)
console.log(`| --- | ${results.map(() => '---').join(' | ')} |`)
for (const k of names) console.log(`| ${k} | ${results.map(([, m]) => per(m, k)).join(' | ')} |`)
console.log(`| **all** | ${results.map(([, m]) => (total(m) / requests).toFixed(2)).join(' | ')} |`)
console.log(`${warmup} warm-up + ${requests} counted calls, ${inFlight} in flight, memory store, ledger on`)
