/**
 * Counts the CPU instructions of one memory decision — sluice's one limit and policy of three,
 * RateLimiterMemory (one, and three awaited in a row) and the no-op the bench rows use as their
 * ceiling — in the bench's own lanes, under valgrind's cachegrind. Instruction counts do not
 * depend on how busy the machine is, unlike the wall-clock rows of `npm run bench`.
 *
 *   npx tsx scripts/decision-instructions.ts [--count 200000] [--warmup 100000] [--only REGEX]
 *
 * bench/workers/decision-loop.ts is bundled with esbuild (plain JS: no tsx in the process), then
 * run with `node --single-threaded` under `valgrind --tool=cachegrind --cache-sim=no` twice per
 * subject: warm-up + `count` decisions, and warm-up + none. The difference divided by `count` is
 * the instructions per decision (start-up, compilation of the warm-up and exit cancel out; what
 * V8 compiles or collects during the counted decisions is theirs). Needs valgrind on the PATH.
 * The redis-* subjects count only the Node process; they need a Redis nothing else uses at
 * SLUICE_BENCH_REDIS_URL (flushed by nobody: their keys are the bench's own).
 */
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { bundleWorker } from '../bench/harness/bundle.js'

const run = promisify(execFile)
/** Row label, subject name in decision-loop.ts. */
const ROWS: [string, string][] = [
  ['sluice, one limit (lanes)', 'sluice-1'],
  ['RateLimiterMemory (lanes)', 'peer-1'],
  ['sluice, one limit + queue nobody waits in (lanes)', 'sluice-1-queue'],
  ['sluice, policy of 3 limits (lanes)', 'sluice-3'],
  ['3× RateLimiterMemory in a row (lanes)', 'peer-3'],
  ['no-op, a resolved promise (lanes)', 'noop'],
  ['Node side of a RedisStore decision, one limit (lanes)', 'redis-1'],
  ['Node side of a RedisStore decision + queue nobody waits in (lanes)', 'redis-1-queue'],
  ['sluice consumeSync, one limit (loop)', 'sluice-1-sync'],
  ['sluice consumeSync, policy of 3 (loop)', 'sluice-3-sync'],
  ['middleware check, one limit, default headers handed on (loop)', 'http-check'],
  ['middleware check, one limit, no headers (loop)', 'http-check-no-headers'],
  ['the same headers handed on as constants (loop)', 'http-headers-only'],
]

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback
}

function positiveInteger(name: string, fallback: number): number {
  const value = Number(option(name, String(fallback)))
  if (!Number.isInteger(value) || value <= 0) {
    console.error(`--${name} must be a positive integer`)
    process.exit(2)
  }
  return value
}

const count = positiveInteger('count', 200_000)
const warmup = positiveInteger('warmup', 100_000)
const only = new RegExp(option('only', '.'))

/** Total instructions of one run, from cachegrind's summary ("I refs: 1,234"). */
async function instructions(bundle: string, subject: string, n: number, outDir: string): Promise<number> {
  const { stderr } = await run(
    'valgrind',
    [
      '--tool=cachegrind',
      '--cache-sim=no',
      `--cachegrind-out-file=${join(outDir, `${subject}-${n}.out`)}`,
      process.execPath,
      '--single-threaded',
      bundle,
      subject,
      String(warmup),
      String(n),
    ],
    { maxBuffer: 16 * 1024 * 1024 },
  )
  const match = /I\s+refs:\s+([\d,]+)/.exec(stderr)
  if (!match) throw new Error(`no instruction count from cachegrind for ${subject}:\n${stderr}`)
  return Number(match[1]!.replaceAll(',', ''))
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-instructions-'))
  try {
    const bundle = await bundleWorker('bench/workers/decision-loop.ts', dir)
    console.log(`instructions per decision: ${count} decisions after ${warmup} of warm-up, minus none\n`)
    console.log('| subject | instructions per decision |')
    console.log('| --- | --- |')
    for (const [label, subject] of ROWS) {
      if (!only.test(subject)) continue
      // One at a time: two cachegrind runs at once would share the two cores with each other.
      const full = await instructions(bundle, subject, count, dir)
      const none = await instructions(bundle, subject, 0, dir)
      console.log(`| ${label} | ${Math.round((full - none) / count).toLocaleString('en-US')} |`)
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

await main()
