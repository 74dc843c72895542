/** One contender's figures for one workload (medians over rounds; latencies merged over rounds). */
export interface Measure {
  name: string
  opsPerSec: number
  /** ops/s of each round, in the order they ran. */
  roundsOpsPerSec: number[]
  p50Ms: number
  p99Ms: number
  /** Share of decisions that were allowed (0 … 1), where it applies. */
  allowedShare?: number
  /** Workload-specific figures (medians over rounds), e.g. Redis commands per denied request. */
  extra?: Record<string, number>
}

/** A row of the main table: sluice against the peers a user would pick instead. */
export interface ThroughputRow {
  id: string
  workload: string
  unit: string
  sluice?: Measure
  peers: Measure[]
  /** Other sluice configurations measured in the same turns (reported in the note and the JSON). */
  others?: Measure[]
  /**
   * What the row is measured against besides peers, e.g. bare Fastify, the upstream called directly
   * or an op that does nothing (the harness's ceiling).
   */
  baseline?: Measure
  /** Further points of reference that limit nothing (in the note and the JSON, never in the ratio). */
  references?: Measure[]
  /** sluice ÷ best peer (ops/s), when both ran; sluice ÷ baseline when there is no peer. */
  ratio?: number
  note?: string
}

export interface ScalingRow {
  processes: number
  sluice: Measure
  peer: Measure
  ratio: number
}

export interface MemoryRow {
  id: string
  what: string
  /** Bytes per key or per subject, as `unit` says. */
  unit: string
  sluice: number
  peer: string
  peerBytes: number
  /** Best peer ÷ sluice: how many times less memory sluice needs (> 1 is better). */
  ratio: number
  note?: string
}

export interface Unavailable {
  id: string
  workload: string
  reason: string
}

export interface Section {
  rows?: ThroughputRow[]
  scaling?: ScalingRow[]
  memory?: MemoryRow[]
  unavailable?: Unavailable[]
}

export interface BenchOptions {
  quick: boolean
  warmupMs: number
  durationMs: number
  /** Server rows: the one warm-up of each server process, which then serves every round. */
  serverWarmupMs: number
  rounds: number
  inFlight: number
  keys: number
  /** Heavier one-off rows: keys in the MemoryStore heap row, subjects in the Redis memory row. */
  memoryKeys: number
  redisMemorySubjects: number
}

export interface BenchContext {
  options: BenchOptions
  /** The bench's own redis-server (started lazily on first use). */
  redis(): Promise<RedisHandle>
}

export interface RedisHandle {
  url: string
  port: number
  version: string
  /** FLUSHALL and reset INFO stats, so that rows never see each other's keys or counters. */
  flush(): Promise<void>
  /** Calls per command since the last flush (INFO commandstats). */
  commandCalls(): Promise<Map<string, number>>
  info(section: string): Promise<string>
  memoryUsage(keys: string[]): Promise<number[]>
}

export interface Workload {
  /** Short name used by --only and in progress lines, e.g. "redis-1-limit". */
  id: string
  title: string
  needsRedis: boolean
  run(ctx: BenchContext): Promise<Section>
}
