import { parseArgs } from 'node:util'
import type { BenchOptions } from './types.js'

export interface CliArgs {
  options: BenchOptions
  only: RegExp | undefined
  json: string | undefined
  list: boolean
  help: boolean
}

export const USAGE = `Usage: npm run bench -- [options]

  --quick              short warm-up and measurement, one round (CI smoke, not for figures)
  --only <pattern>     run the workloads whose id matches (regular expression, case-insensitive),
                       e.g. --only redis  or  --only 'memory-1|fastify'
  --json <file>        also write every figure as JSON to <file>
  --duration <s>       measured seconds per contender and round (default 4, quick 1)
  --warmup <s>         warm-up seconds before each measurement (default 1, quick 0.3)
  --server-warmup <s>  server rows (gateway, detectors): one warm-up per server process, kept
                       for every round (default 45, quick 1)
  --rounds <n>         rounds per row, contenders alternating order (default 3, quick 1)
  --in-flight <n>      operations in flight (default 256)
  --keys <n>           distinct keys (default 1000)
  --list               list the workloads and exit
  --help               this text`

export class UsageError extends Error {
  override name = 'UsageError'
}

function positive(value: string | undefined, name: string, fallback: number, integer: boolean): number {
  if (value === undefined) return fallback
  const n = Number(value)
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) {
    throw new UsageError(`--${name} must be a positive ${integer ? 'whole ' : ''}number, got "${value}"`)
  }
  return n
}

export function parseCli(argv: string[]): CliArgs {
  let parsed: ReturnType<typeof parse>
  try {
    parsed = parse(argv)
  } catch (error) {
    throw new UsageError((error as Error).message)
  }
  const v = parsed.values
  const quick = v.quick === true
  let only: RegExp | undefined
  if (v.only !== undefined) {
    try {
      only = new RegExp(v.only, 'i')
    } catch {
      throw new UsageError(`--only must be a regular expression, got "${v.only}"`)
    }
  }
  if (v.json === '') throw new UsageError('--json needs a file name')
  return {
    options: {
      quick,
      warmupMs: positive(v.warmup, 'warmup', quick ? 0.3 : 1, false) * 1000,
      durationMs: positive(v.duration, 'duration', quick ? 1 : 4, false) * 1000,
      serverWarmupMs: positive(v['server-warmup'], 'server-warmup', quick ? 1 : 45, false) * 1000,
      rounds: positive(v.rounds, 'rounds', quick ? 1 : 3, true),
      inFlight: positive(v['in-flight'], 'in-flight', 256, true),
      keys: positive(v.keys, 'keys', 1000, true),
      memoryKeys: quick ? 100_000 : 1_000_000,
      redisMemorySubjects: quick ? 1_000 : 10_000,
    },
    only,
    json: v.json,
    list: v.list === true,
    help: v.help === true,
  }
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      quick: { type: 'boolean' },
      only: { type: 'string' },
      json: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      'server-warmup': { type: 'string' },
      rounds: { type: 'string' },
      'in-flight': { type: 'string' },
      keys: { type: 'string' },
      list: { type: 'boolean' },
      help: { type: 'boolean' },
    },
  })
}
