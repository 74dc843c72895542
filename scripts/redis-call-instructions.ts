/**
 * Counts redis-server's instructions per decision for the `redis-cluster` bench row's workload
 * (one limit, `--keys` subjects used round-robin, `--in-flight` decisions in flight): on one
 * Redis, whose batches read their keys with one MGET, and on the busiest master of a 3-node
 * cluster, whose node batches read one GET per key. Instruction counts do not depend on how busy
 * the machine is, unlike the CPU times the bench row reads.
 *
 *   npx tsx scripts/redis-call-instructions.ts [--keys 1000] [--in-flight 256] [--decisions 4000]
 *
 * 1. Capture: a RedisStore drives the workload against a private redis-server and a private
 *    3-node cluster (the test helpers' free ports) while MONITOR records every FCALL.
 * 2. Replay: the first FCALLs that carry `decisions` decisions, of one Redis and of the cluster
 *    master that received the most decisions (every size of call as captured), are sent through `redis-cli --pipe` to a redis-server run under
 *    `valgrind --tool=cachegrind --cache-sim=no` (the cluster's with --cluster-enabled and every
 *    slot, so each redis.call pays the cluster checks it pays on a real master), once and four
 *    times: (total of 4 − total of 1) ÷ (3 × decisions) = instructions per decision (start-up,
 *    the library's load and the keys' creation cancel out).
 * 3. Projection: one Redis's instructions per decision ÷ (busiest master's share of the decisions
 *    × its instructions per decision): what the cluster would do over one node with a core per
 *    redis-server, each saturated. Needs valgrind and redis-cli on the PATH.
 */
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { Redis } from 'ioredis'
import { sluiceOneLimit, sluiceOp, subjects } from '../bench/contenders.js'
import { startCountedRedis } from '../bench/harness/cachegrind-redis.js'
import { drive } from '../bench/harness/drive.js'
import { APPLY_LIBRARY } from '../src/store/redis/script.js'
import { RedisStore } from '../src/store/redis/store.js'
import { startRedisCluster } from '../test/helpers/redis-cluster.js'
import { startRedis } from '../test/helpers/redis-server.js'

const run = promisify(execFile)

function option(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`)
  const value = i < 0 ? fallback : Number(process.argv[i + 1])
  if (!Number.isInteger(value) || value <= 0) throw new Error(`--${name} must be a positive integer`)
  return value
}
const keys = option('keys', 1000)
const inFlight = option('in-flight', 256)
const take = option('decisions', 4000)

/** The decisions of a captured FCALL: its batch's op count (see apply.lua's ARGV). */
function decisionsOf(call: string[]): number {
  const node = call[1]!.startsWith('sluice_apply_node_')
  const argv = node ? 5 + Number(call[4]) : 3 + Number(call[2])
  return Number(call[argv + 1 + Number(call[argv])])
}

/** Drives the workload through `store`, recording the FCALLs each of `urls` receives. */
async function capture(store: RedisStore, urls: string[]): Promise<string[][][]> {
  await store.whenReady()
  console.error(`capturing the calls of ${urls.length === 1 ? 'one Redis' : 'a 3-node cluster'}`)
  const op = sluiceOp(sluiceOneLimit(store), subjects(keys))
  const lanes = { inFlight, keys, sampleEvery: 1000 }
  await drive(op, { ...lanes, durationMs: 500 })
  const calls: string[][][] = urls.map(() => [])
  const clients = urls.map((u) => new Redis(u))
  const monitors = await Promise.all(clients.map((c) => c.monitor()))
  monitors.forEach((m, i) => {
    m.on('monitor', (_time: string, args: string[]) => {
      if (args[0]?.toLowerCase() === 'fcall') calls[i]!.push(args)
    })
  })
  // Until every node received enough (MONITOR slows a busy machine's servers down a lot).
  const decided = (i: number) => calls[i]!.reduce((s, c) => s + decisionsOf(c), 0)
  for (let round = 0; round < 40 && urls.some((_, i) => decided(i) < take); round++) {
    await drive(op, { ...lanes, durationMs: 500 })
  }
  await new Promise((r) => setTimeout(r, 200))
  for (const m of monitors) m.disconnect()
  for (const c of clients) c.disconnect()
  await store.close()
  return calls
}

function respOf(calls: string[][], copies: number): Buffer {
  const parts: Buffer[] = []
  for (const call of calls) {
    parts.push(Buffer.from(`*${call.length}\r\n`))
    for (const arg of call) {
      const b = Buffer.from(arg, 'latin1')
      parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'))
    }
  }
  const one = Buffer.concat(parts)
  return Buffer.concat(Array.from({ length: copies }, () => one))
}

/** Total instructions of a redis-server under cachegrind that answered `copies` copies of `calls`. */
async function replay(calls: string[][], copies: number, cluster: boolean, dir: string): Promise<number> {
  const name = `${cluster ? 'node' : 'one'}-${copies}`
  const resp = join(dir, `${name}.resp`)
  writeFileSync(resp, respOf(calls, copies))
  const server = await startCountedRedis(dir, name, cluster)
  await server.admin.call('FUNCTION', 'LOAD', 'REPLACE', APPLY_LIBRARY)
  const { stdout } = await run('sh', ['-c', `redis-cli -p ${server.port} --pipe < ${resp}`])
  if (!/errors: 0,/.test(stdout)) throw new Error(`the replay had errors: ${stdout}`)
  return server.stop()
}

/** The first calls that carry at least `take` decisions. */
function first(calls: string[][]): string[][] {
  let decisions = 0
  let n = 0
  while (n < calls.length && decisions < take) decisions += decisionsOf(calls[n++]!)
  if (decisions < take) throw new Error(`only ${decisions} decisions captured`)
  return calls.slice(0, n)
}

async function perDecision(calls: string[][], cluster: boolean, dir: string): Promise<number> {
  const decisions = calls.reduce((s, c) => s + decisionsOf(c), 0)
  console.error(
    `replaying ${cluster ? 'the busiest master' : 'one Redis'}: ${calls.length} calls, ${decisions} decisions`,
  )
  const [once1, four] = await Promise.all([replay(calls, 1, cluster, dir), replay(calls, 4, cluster, dir)])
  return (four - once1) / (3 * decisions)
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-call-instructions-'))
  const single = await startRedis()
  const cluster = await startRedisCluster()
  try {
    const [oneCalls] = await capture(new RedisStore({ url: single.url }), [single.url])
    const urls = cluster.nodes.map((n) => n.url)
    const byNode = await capture(new RedisStore({ nodes: urls }), urls)
    const decided = byNode.map((calls) => calls.reduce((s, c) => s + decisionsOf(c), 0))
    const total = decided.reduce((s, x) => s + x, 0)
    const busiest = decided.indexOf(Math.max(...decided))
    const nodeCalls = byNode[busiest]!
    const size = (calls: string[][]) =>
      (calls.reduce((s, c) => s + decisionsOf(c), 0) / calls.length).toFixed(1)
    const [one, node] = await Promise.all([
      perDecision(first(oneCalls!), false, dir),
      perDecision(first(nodeCalls), true, dir),
    ])
    const share = decided[busiest]! / total
    console.log(`${keys} keys, ${inFlight} in flight, the first calls of ${take} decisions of each replayed`)
    console.log(
      `one Redis: ${Math.round(one)} instructions per decision (${size(oneCalls!)} decisions per call)`,
    )
    console.log(
      `busiest cluster master: ${Math.round(node)} instructions per decision (${size(nodeCalls)} decisions per call), ${(100 * share).toFixed(1)} % of the decisions (masters: ${decided.map((d) => ((100 * d) / total).toFixed(1)).join(' / ')} %)`,
    )
    console.log(`a cluster decision ÷ a one-Redis decision: ${(node / one).toFixed(3)}`)
    console.log(`projected cluster ÷ one Redis, a core each: ${(one / (share * node)).toFixed(2)}×`)
  } finally {
    await cluster.stop()
    await single.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}

await main()
