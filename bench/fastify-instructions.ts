/**
 * Instructions the Fastify row's server executes per request, counted by callgrind (counting on
 * after the warm-up only): the `fastify` row's worker (bench/workers/fastify-server.ts, bundled:
 * no tsx) bare, sending sluice's default headers as constants (`bare-headers`, the floor of any
 * limiter that sends them), with sluice on a MemoryStore, and with @fastify/rate-limit — each
 * counted `--repeat` times, the variants alternated. The goal it judges (issue 20, goal 2) is
 * sluice within 5 % of `bare-headers`; a count a busy machine does not move, where req/s swings.
 * Only the server's user-space work is counted: the kernel's (writing the response) is in neither.
 *
 * The warm-up is long because V8 keeps compiling the server's code for thousands of requests: after
 * 1,000 or 3,000 a request counted 525k or 110k instructions, after 10,000 ~78k, repeatable.
 *
 *   npx tsx bench/fastify-instructions.ts [--warmup 10000] [--requests 10000] [--repeat 2]
 *     [--variants bare-headers,sluice-memory]
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { Pool } from 'undici'
import { bundleWorker } from './harness/bundle.js'
import { CountedProcess } from './harness/callgrind.js'
import { sendCalls } from './harness/calls.js'
import type { FromWorker } from './harness/child.js'
import { median } from './harness/latency.js'

const { values } = parseArgs({
  options: {
    warmup: { type: 'string' },
    requests: { type: 'string' },
    repeat: { type: 'string' },
    variants: { type: 'string' },
  },
})
const warmup = Number(values.warmup ?? 10000)
const requests = Number(values.requests ?? 10000)
const repeat = Number(values.repeat ?? 2)
const variants = (values.variants ?? 'bare-headers,sluice-memory,peer-memory').split(',')
const CONNECTIONS = 16

const GET = { method: 'GET' as const, path: '/' }

async function count(bundle: string, variant: string): Promise<number> {
  const server = CountedProcess.start(
    [bundle, JSON.stringify({ variant })],
    ['ignore', 'inherit', 'pipe', 'ipc'],
  )
  try {
    const ready = await new Promise<FromWorker>((resolve, reject) => {
      server.child.once('message', (m) => resolve(m as FromWorker))
      server.child.once('exit', () =>
        reject(new Error(`${variant} exited before it listened:\n${server.stderr}`)),
      )
    })
    if (ready.type !== 'ready') throw new Error(`${variant}: ${JSON.stringify(ready)}`)
    const pool = new Pool(String(ready.info?.url), { connections: CONNECTIONS })
    try {
      await sendCalls(pool, warmup, CONNECTIONS, () => GET)
      await server.counting(true)
      await sendCalls(pool, requests, CONNECTIONS, () => GET)
      await server.counting(false)
    } finally {
      await pool.close()
    }
    return await server.total(() => server.child.send({ type: 'stop' }))
  } finally {
    server.kill()
  }
}

const dir = mkdtempSync(join(tmpdir(), 'sluice-fastify-instructions-'))
const perRequest = new Map<string, number[]>(variants.map((v) => [v, []]))
try {
  const bundle = await bundleWorker('bench/workers/fastify-server.ts', dir)
  for (let r = 0; r < repeat; r++) {
    for (const variant of r % 2 === 0 ? variants : [...variants].reverse()) {
      const value = (await count(bundle, variant)) / requests
      perRequest.get(variant)!.push(value)
      process.stderr.write(`${variant}: ${Math.round(value).toLocaleString('en')} instructions per request\n`)
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true })
}
const floor = perRequest.has('bare-headers') ? median(perRequest.get('bare-headers')!) : undefined
console.log(
  `${requests} requests after ${warmup} of warm-up, ${CONNECTIONS} connections, ${repeat} counts each\n`,
)
console.log('| server | instructions per request (each count) | median | ÷ bare-headers |')
console.log('| --- | --- | --- | --- |')
for (const [variant, xs] of perRequest) {
  const m = median(xs)
  const ratio = floor === undefined ? '' : `${(m / floor).toFixed(3)}×`
  const each = xs.map((x) => Math.round(x).toLocaleString('en')).join(', ')
  console.log(`| ${variant} | ${each} | ${Math.round(m).toLocaleString('en')} | ${ratio} |`)
}
