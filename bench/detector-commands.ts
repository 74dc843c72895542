/**
 * What the abuse detectors cost Redis per gateway call, counted rather than timed (a loaded
 * machine makes timings noise): Redis commands and script calls per call, from `INFO
 * commandstats` after `CONFIG RESETSTAT`, for the gateway of the `detectors` bench row (one key,
 * varied prompts, a spend floor no call reaches) with the detectors off and on.
 *
 *   npx tsx bench/detector-commands.ts redis://127.0.0.1:6379     (use a Redis nothing else uses)
 *
 * With `--instructions`, redis-server's instructions per gateway call instead, counted by
 * valgrind (bench/harness/cachegrind-redis.ts): for each side a private redis-server under
 * cachegrind answers CALLS calls and another CALLS / 4; (total of the first − of the second) ÷
 * (the difference in calls) is one call, start-up, loading and warming up cancelled out.
 *
 *   npx tsx bench/detector-commands.ts --instructions      (CALLS=2000 by default; 16 in flight)
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { Pool } from 'undici'
import { startGateway } from '../src/gateway/index.js'
import { startMockUpstream } from '../src/gateway/mock/server.js'
import { startCountedRedis } from './harness/cachegrind-redis.js'
import { API_KEY, chatRequest } from './harness/detector-gateway.js'

const instructions = process.argv.includes('--instructions')
const CALLS = Number(process.env.CALLS ?? 2000)
const upstream = await startMockUpstream({ port: 0 })
const huge = {
  hourly: { kind: 'slidingWindow', limit: 1e9, window: '1h' },
  tokens: { kind: 'tokenBucket', unit: 'tokens', capacity: 1e12, refillPerSecond: 1 },
  burst: { kind: 'tokenBucket', capacity: 1e9, refillPerSecond: 1 },
}

interface Counts {
  /** Commands per call, by name (those scripts run included). */
  commands: Record<string, number>
  /** Redis CPU per call (µs) in scripts, by script command (EVALSHA: detectors; FCALL: limits). */
  usec: Record<string, number>
  /** CPU per call (µs) of redis-server, and of this process (gateway, mock upstream and client). */
  redisCpu: number
  nodeCpu: number
}

async function redisCpuUs(admin: Redis): Promise<number> {
  const info = await admin.info('cpu')
  const field = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)![1])
  return (field('used_cpu_user') + field('used_cpu_sys')) * 1e6
}

/** The gateway with the detectors on or off on the Redis at `url`, driven for `calls` calls. */
async function drive(
  url: string,
  detectors: boolean,
  inFlight: number,
  calls: number,
  before?: () => Promise<void>,
): Promise<void> {
  const gateway = await startGateway(
    {
      host: '127.0.0.1',
      port: 0,
      // Under valgrind Redis answers tens of times slower, and a loaded machine slows it too
      // (calls answered 503): no call may time out here.
      store: { type: 'redis', url, timeout: 60_000 },
      tiers: { service: { limits: huge } },
      upstreams: { bench: { type: 'openai', baseUrl: upstream.url, apiKeyEnv: 'BENCH_UPSTREAM_KEY' } },
      defaultUpstream: 'bench',
      ...(detectors && { detectors: { spend: { floorPerMinute: 1e12 } } }),
      log: { level: 'warn' },
    } as never,
    { env: { SLUICE_DEMO_KEY: API_KEY, BENCH_UPSTREAM_KEY: 'unused' } },
  )
  const pool = new Pool(new URL(gateway.url).origin, { connections: inFlight, pipelining: 1 })
  let next = 0
  const call = async () => {
    const res = await pool.request(chatRequest(next++))
    await res.body.text()
    if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`)
  }
  await call() // warm-up: scripts loaded, connections open
  await new Promise((r) => setTimeout(r, 100)) // the warm-up's background record step
  await before?.()
  next = 0
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < calls) await call()
    }),
  )
  await pool.close()
  await gateway.close()
}

async function perCall(url: string, detectors: boolean, inFlight: number): Promise<Counts> {
  const admin = new Redis(url)
  await admin.flushall()
  let redisBefore = 0
  let nodeBefore = process.cpuUsage()
  await drive(url, detectors, inFlight, CALLS, async () => {
    await admin.config('RESETSTAT')
    redisBefore = await redisCpuUs(admin)
    nodeBefore = process.cpuUsage()
  })
  const node = process.cpuUsage(nodeBefore)
  const redisCpu = ((await redisCpuUs(admin)) - redisBefore) / CALLS
  const commands: Record<string, number> = {}
  const usec: Record<string, number> = {}
  for (const line of (await admin.info('commandstats')).split('\n')) {
    const m = /^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/.exec(line)
    if (m === null || m[1]!.startsWith('config') || m[1] === 'info') continue
    commands[m[1]!] = Number(m[2]) / CALLS
    if (/^(evalsha|eval|fcall)$/.test(m[1]!)) usec[m[1]!] = Number(m[3]) / CALLS
  }
  admin.disconnect()
  return { commands, usec, redisCpu, nodeCpu: (node.user + node.system) / CALLS }
}

/** redis-server's instructions per gateway call (see the top), 16 in flight. */
async function instructionsPerCall(detectors: boolean, dir: string): Promise<number> {
  const few = Math.floor(CALLS / 4)
  const total = async (calls: number) => {
    const server = await startCountedRedis(dir, `${detectors ? 'on' : 'off'}-${calls}`)
    await drive(server.url, detectors, 16, calls)
    return server.stop()
  }
  const [many, some] = [await total(CALLS), await total(few)]
  return (many - some) / (CALLS - few)
}

const url =
  process.argv.slice(2).find((a) => !a.startsWith('--')) ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
// ONLY=on or ONLY=off runs one of them, at 16 in flight (for --cpu-prof).
const only = process.env.ONLY
if (instructions) {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-detector-instructions-'))
  try {
    const off = await instructionsPerCall(false, dir)
    const on = await instructionsPerCall(true, dir)
    console.log(
      `redis-server instructions per gateway call, 16 in flight: detectors off ${Math.round(off)}, on ${Math.round(on)} (on − off ${Math.round(on - off)})`,
    )
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
} else
  for (const inFlight of only === undefined ? [1, 16] : [16]) {
    for (const detectors of only === undefined ? [false, true] : [only === 'on']) {
      const { commands, usec, redisCpu, nodeCpu } = await perCall(url, detectors, inFlight)
      const total = Object.values(commands).reduce((a, b) => a + b, 0)
      const shown = Object.entries(commands).map(([c, n]) => `${c} ${n.toFixed(3)}`)
      const cpu = Object.entries(usec).map(([c, n]) => `${c} ${n.toFixed(1)} µs`)
      console.log(
        `${String(inFlight).padStart(2)} in flight, detectors ${detectors ? 'on ' : 'off'} per call: ${total.toFixed(3)} commands (${shown.join(', ')}); script time ${cpu.join(', ')}; CPU redis-server ${redisCpu.toFixed(0)} µs, node ${nodeCpu.toFixed(0)} µs`,
      )
    }
  }
await upstream.close()
