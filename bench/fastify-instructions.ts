/**
 * Instructions the Fastify row's server executes per request, counted by callgrind (counting on
 * after the warm-up only): the `fastify` row's worker (bench/workers/fastify-server.ts, bundled:
 * no tsx) bare, sending sluice's default headers as constants (`bare-headers`, the floor of any
 * limiter that sends them), with sluice on a MemoryStore, and with @fastify/rate-limit — each
 * counted `--repeat` times, the variants alternated. The goal it judges (issue 20, goal 2) is
 * sluice within 5 % of `bare-headers`; a count a busy machine does not move, where req/s swings.
 * `bare-headers-direct` (named only with `--variants`) sends the same constants as the reply's own
 * header object, without reply.header(), the way sluice's plugin sets its headers: the floor of
 * that way.
 * Only the server's user-space work is counted: the kernel's (writing the response) is in neither.
 *
 * A variant on Redis (`sluice-redis`, `sluice-redis-legacy`, `peer-redis`) gets a redis-server of
 * its own, also under callgrind and counted over the same requests: its column is the server's
 * count plus redis-server's (each is printed too), the work a request costs the whole system.
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
import { Redis } from 'ioredis'
import { Pool } from 'undici'
import { freePort } from '../test/helpers/free-port.js'
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

/** A redis-server under callgrind, counting nothing yet, and its URL once it answers. */
async function startCountedRedis(): Promise<{ redis: CountedProcess; url: string }> {
  const port = await freePort()
  const redis = CountedProcess.startProgram(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    ['ignore', 'ignore', 'pipe'],
  )
  const admin = new Redis(port, '127.0.0.1', { retryStrategy: () => 200, maxRetriesPerRequest: null })
  admin.on('error', () => {}) // refused while valgrind starts the server: retried
  try {
    await admin.ping()
  } finally {
    admin.disconnect()
  }
  return { redis, url: `redis://127.0.0.1:${port}` }
}

interface Count {
  server: number
  redis: number
}

async function count(bundle: string, variant: string): Promise<Count> {
  const counted = variant.includes('redis') ? await startCountedRedis() : undefined
  const server = CountedProcess.start(
    [bundle, JSON.stringify({ variant, redisUrl: counted?.url })],
    ['ignore', 'inherit', 'pipe', 'ipc'],
  )
  const redis = counted?.redis
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
      await Promise.all([server.counting(true), redis?.counting(true)])
      await sendCalls(pool, requests, CONNECTIONS, () => GET)
      await Promise.all([server.counting(false), redis?.counting(false)])
    } finally {
      await pool.close()
    }
    const serverTotal = await server.total(() => server.child.send({ type: 'stop' }))
    // SIGTERM: redis-server shuts down cleanly (no save configured), so callgrind writes its counts.
    const redisTotal = redis === undefined ? 0 : await redis.total(() => redis.child.kill('SIGTERM'))
    return { server: serverTotal, redis: redisTotal }
  } finally {
    server.kill()
    redis?.kill()
  }
}

const dir = mkdtempSync(join(tmpdir(), 'sluice-fastify-instructions-'))
const perRequest = new Map<string, number[]>(variants.map((v) => [v, []]))
/** Each count as printed: the total per request, and its parts on Redis. */
const shown = new Map<string, string[]>(variants.map((v) => [v, []]))
try {
  const bundle = await bundleWorker('bench/workers/fastify-server.ts', dir)
  for (let r = 0; r < repeat; r++) {
    for (const variant of r % 2 === 0 ? variants : [...variants].reverse()) {
      const counted = await count(bundle, variant)
      const value = (counted.server + counted.redis) / requests
      perRequest.get(variant)!.push(value)
      const parts =
        counted.redis === 0
          ? ''
          : ` (server ${Math.round(counted.server / requests).toLocaleString('en')} + redis-server ${Math.round(counted.redis / requests).toLocaleString('en')})`
      shown.get(variant)!.push(`${Math.round(value).toLocaleString('en')}${parts}`)
      process.stderr.write(
        `${variant}: ${Math.round(value).toLocaleString('en')} instructions per request${parts}\n`,
      )
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
  const each = shown.get(variant)!.join(', ')
  console.log(`| ${variant} | ${each} | ${Math.round(m).toLocaleString('en')} | ${ratio} |`)
}
