/**
 * `npm run bench`: every workload against sluice and the peers a user would pick instead, in one
 * run on one machine. Progress goes to stderr, the tables to stdout, --json writes the same figures.
 */
import { writeFile } from 'node:fs/promises'
import { loadavg } from 'node:os'
import { parseCli, USAGE, UsageError } from './harness/args.js'
import { describeMachine, machineLine } from './harness/machine.js'
import { progress } from './harness/progress.js'
import { type BenchRedis, startBenchRedis } from './harness/redis.js'
import { memoryTable, scalingTable, throughputTable, unavailableTable } from './harness/table.js'
import type { BenchContext, Section } from './harness/types.js'
import { WORKLOADS } from './workloads/index.js'

async function main(): Promise<number> {
  let cli: ReturnType<typeof parseCli>
  try {
    cli = parseCli(process.argv.slice(2))
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`${error.message}\n\n${USAGE}\n`)
      return 2
    }
    throw error
  }
  if (cli.help) {
    process.stdout.write(`${USAGE}\n`)
    return 0
  }
  if (cli.list) {
    for (const w of WORKLOADS) process.stdout.write(`${w.id.padEnd(22)} ${w.title}\n`)
    return 0
  }
  const selected = WORKLOADS.filter((w) => !cli.only || cli.only.test(w.id))
  if (selected.length === 0) {
    process.stderr.write(`--only ${cli.only} matches no workload; --list shows them\n`)
    return 2
  }

  const machine = describeMachine()
  const { options } = cli
  const command = [
    'npm run bench',
    ...(process.argv.length > 2 ? ['--', ...process.argv.slice(2)] : []),
  ].join(' ')
  let redis: Promise<BenchRedis> | undefined
  const ctx: BenchContext = {
    options,
    redis() {
      redis ??= startBenchRedis().then((r) => {
        machine.redis = r.version
        progress(`redis-server ${r.version} on 127.0.0.1:${r.port}`)
        return r
      })
      return redis
    },
  }

  progress(
    `sluice bench: ${selected.map((w) => w.id).join(', ')}; ${options.inFlight} in flight, ${options.keys} keys, ` +
      `warm-up ${options.warmupMs} ms, measure ${options.durationMs} ms, ${options.rounds} round(s)` +
      (globalThis.gc ? '' : ' (no --expose-gc: no GC between contenders)'),
  )
  const all: Required<Section> = { rows: [], scaling: [], memory: [], unavailable: [] }
  const failures: { id: string; error: string }[] = []
  for (const [i, workload] of selected.entries()) {
    progress(`▶ [${i + 1}/${selected.length}] ${workload.id}: ${workload.title}`)
    try {
      const section = await workload.run(ctx)
      all.rows.push(...(section.rows ?? []))
      all.scaling.push(...(section.scaling ?? []))
      all.memory.push(...(section.memory ?? []))
      all.unavailable.push(...(section.unavailable ?? []))
    } catch (error) {
      const message = error instanceof Error ? (error.stack ?? error.message) : String(error)
      progress(`✗ ${workload.id} failed: ${message}`)
      failures.push({ id: workload.id, error: error instanceof Error ? error.message : String(error) })
    }
  }
  if (redis) await (await redis).stop()
  machine.loadAtEnd = loadavg()[0]!

  const out: string[] = []
  out.push(`sluice bench — ${new Date().toISOString()}`)
  out.push(`command: ${command}`)
  out.push(`machine: ${machineLine(machine)}`)
  out.push(
    `settings: ${options.inFlight} in flight, ${options.keys} keys, warm-up ${options.warmupMs / 1000} s, ` +
      `${options.durationMs / 1000} s measured × ${options.rounds} round(s) (median), one Node process unless noted` +
      (options.quick ? ' — QUICK MODE: smoke test, not figures to quote' : ''),
  )
  if (all.rows.length) out.push('', throughputTable(all.rows))
  if (all.scaling.length)
    out.push('', 'Scaling (RedisStore, one limit, 256 in flight per process):', '', scalingTable(all.scaling))
  if (all.memory.length) out.push('', 'Memory:', '', memoryTable(all.memory))
  if (all.unavailable.length) out.push('', 'Not run:', '', unavailableTable(all.unavailable))
  if (failures.length) out.push('', `FAILED: ${failures.map((f) => `${f.id} (${f.error})`).join('; ')}`)
  process.stdout.write(`${out.join('\n')}\n`)

  if (cli.json) {
    const report = { date: new Date().toISOString(), command, machine, options, ...all, failures }
    await writeFile(cli.json, `${JSON.stringify(report, null, 2)}\n`)
    progress(`wrote ${cli.json}`)
  }
  return failures.length ? 1 : 0
}

main().then(
  (code) => process.exit(code),
  (error) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
    process.exit(1)
  },
)
