/**
 * Ledger rows written per second through LedgerWriter, on SQLite (a temporary file) and on
 * PostgreSQL (a temporary database on SLUICE_BENCH_PG_URL, default the local server), how long
 * the event loop was held meanwhile (the gateway serves requests on that loop), and how long one
 * batch of the writer's size takes when written alone.
 *
 *   npx tsx bench/ledger-write.ts [--rows 200000] [--rounds 3] [--only sqlite|postgres]
 *
 * Rows are appended in bursts of 500 per event-loop turn, as a busy gateway would, while the
 * writer flushes in the background; the clock stops when flush() has committed the last row. The
 * appends outrun the writer, so the buffer is sized to hold them all (by default it holds 100,000
 * and drops, counting, beyond that). Beside the rate, rows per second of this process's CPU time
 * and the load average: on a shared machine the rate says how busy the machine was as much as how
 * fast the writer is.
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import pg from 'pg'
import { type LedgerEntry, openControl } from '../src/control/index.js'
import { defaultBatchRows, ledgerInsertFor } from '../src/control/ledger-insert.js'
import { ledgerInsertOf } from '../src/control/ledger-rows.js'

const args = process.argv.slice(2)
const arg = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`)
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : fallback
}
const ROWS = Number(arg('rows', '200000'))
const ROUNDS = Number(arg('rounds', '3'))
const ONLY = arg('only', '')
const PG_URL = process.env.SLUICE_BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
const BURST = 500
const loadBefore = loadavg()
  .map((l) => l.toFixed(2))
  .join(' ')

function row(i: number): LedgerEntry {
  return {
    requestId: `req-${i}`,
    keyId: `k${(i % 1000).toString().padStart(9, '0')}`,
    team: `team-${i % 20}`,
    user: `user-${i % 5000}`,
    tier: 'service',
    subject: `key:k${i % 1000}`,
    model: 'gpt-4o-mini',
    upstream: 'openai',
    route: 'chat',
    stream: i % 2 === 0,
    status: 200,
    outcome: 'ok',
    source: 'upstream',
    promptTokens: 812,
    cachedTokens: 512,
    completionTokens: 129,
    reasoningTokens: 0,
    usd: 0.000199,
    usdInput: 0.0000453,
    usdCached: 0.0000384,
    usdOutput: 0.0000774,
    latencyMs: 412.7,
  }
}

interface Result {
  rowsPerSecond: number
  /** Rows per second of this process's CPU time (appending and writing; not the PostgreSQL server's). */
  rowsPerCpuSecond: number
  maxLoopDelayMs: number
  p99LoopDelayMs: number
  /** One batch of the default size, written alone: how long it takes (p50, p99, max). */
  batch: { rows: number; p50: number; p99: number; max: number }
}

/** Times 200 batches of the writer's default size, each written alone through the same insert. */
async function timeBatches(control: Awaited<ReturnType<typeof openControl>>): Promise<Result['batch']> {
  const insert = ledgerInsertFor(control.database)
  const rows = defaultBatchRows(control.database)
  const times: number[] = []
  for (let b = 0; b < 200; b++) {
    const batch = Array.from({ length: rows }, (_, i) => ledgerInsertOf(row(b * rows + i), Date.now()))
    const start = performance.now()
    await insert(batch)
    times.push(performance.now() - start)
  }
  times.sort((a, b) => a - b)
  return { rows, p50: times[100]!, p99: times[197]!, max: times[199]! }
}

async function measure(url: string): Promise<Result> {
  // A buffer that holds the whole run: this measures how fast the writer drains, not the drop policy.
  const control = await openControl({ url, ledger: { maxBuffered: ROWS } })
  await control.database.db.deleteFrom('ledger').execute()
  const delay = monitorEventLoopDelay({ resolution: 1 })
  delay.enable()
  const start = performance.now()
  const cpu = process.cpuUsage()
  for (let i = 0; i < ROWS; i++) {
    control.ledger.append(row(i))
    if (i % BURST === BURST - 1) await new Promise((r) => setImmediate(r))
  }
  await control.ledger.flush()
  const seconds = (performance.now() - start) / 1000
  const used = process.cpuUsage(cpu)
  delay.disable()
  const stats = control.ledger.stats()
  const count = await control.usage.totals()
  const batch = await timeBatches(control)
  await control.close()
  if (stats.dropped !== 0 || count[0]?.requests !== ROWS) {
    throw new Error(
      `expected ${ROWS} rows, the database holds ${count[0]?.requests}, ${stats.dropped} dropped`,
    )
  }
  return {
    rowsPerSecond: ROWS / seconds,
    rowsPerCpuSecond: ROWS / ((used.user + used.system) / 1e6),
    maxLoopDelayMs: delay.max / 1e6,
    p99LoopDelayMs: delay.percentile(99) / 1e6,
    batch,
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

async function run(name: string, url: string): Promise<string> {
  const results: Result[] = []
  for (let r = 0; r < ROUNDS; r++) {
    const result = await measure(url)
    process.stderr.write(
      `  ${name} round ${r + 1}: ${Math.round(result.rowsPerSecond).toLocaleString('en-US')} rows/s, ${Math.round(result.rowsPerCpuSecond).toLocaleString('en-US')} per CPU second\n`,
    )
    results.push(result)
  }
  const fmt = (n: number) => Math.round(n).toLocaleString('en-US')
  const m = (pick: (r: Result) => number) => median(results.map(pick)).toFixed(1)
  return (
    `| ${name.padEnd(10)} | ${fmt(median(results.map((r) => r.rowsPerSecond))).padStart(9)} | ` +
    `${fmt(median(results.map((r) => r.rowsPerCpuSecond))).padStart(13)} | ` +
    `${m((r) => r.p99LoopDelayMs)} / ${m((r) => r.maxLoopDelayMs)} | ${results[0]!.batch.rows} rows: ` +
    `${m((r) => r.batch.p50)} / ${m((r) => r.batch.p99)} / ${m((r) => r.batch.max)} |`
  )
}

const lines: string[] = []
if (ONLY === '' || ONLY === 'sqlite') {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-'))
  try {
    lines.push(await run('SQLite', join(dir, 'bench.db')))
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
if (ONLY === '' || ONLY === 'postgres') {
  const name = `sluice_bench_${randomBytes(4).toString('hex')}`
  const admin = new pg.Client({ connectionString: PG_URL })
  await admin.connect()
  await admin.query(`CREATE DATABASE ${name}`)
  try {
    const url = new URL(PG_URL)
    url.pathname = `/${name}`
    lines.push(await run('PostgreSQL', url.toString()))
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
    await admin.end()
  }
}
process.stdout.write(
  `ledger writes: ${ROWS.toLocaleString('en-US')} rows × ${ROUNDS} rounds (median), ${cpus().length} × ${cpus()[0]?.model}, Node ${process.version}\n\n` +
    '| database   |    rows/s | rows/CPU s ¹ | event-loop delay p99 / max ms | one batch alone, p50 / p99 / max ms |\n' +
    '|------------|-----------|---------------|-------------------------------|-------------------------------------|\n' +
    `${lines.join('\n')}\n\n` +
    "¹ rows per second of this process's CPU time (appending and writing): what one free core would\n" +
    "  reach on SQLite; on PostgreSQL the server's own CPU is not in it.\n" +
    `load average (1, 5, 15 min) before: ${loadBefore}; after: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}\n`,
)
