/**
 * Detector state in Redis: each step runs in Lua (lua/*.lua) with Redis TIME, so that instances
 * sharing the Redis share one state and a level is raised — and reported — by exactly one of
 * them. The check, record and failure steps of one event-loop turn share one script call (batch.ts). A
 * subject's keys share its hash tag (one slot on a cluster) and expire.
 */
import type {
  CheckOutcome,
  CheckStep,
  DetectorName,
  Flag,
  LoopStep,
  Raised,
  RecordStep,
  StuffingStep,
} from '../../core/detectors/index.js'
import { requirePositiveInteger } from '../../core/errors.js'
import {
  isIORedis,
  isIORedisCluster,
  isNodeRedis,
  isNodeRedisCluster,
  NO_FUNCTIONS,
  type RedisClient,
  type RedisConnection,
} from '../redis/connection.js'
import { IORedisConnection } from '../redis/ioredis.js'
import { NodeRedisConnection } from '../redis/node-redis.js'
import { type Fold, type LoopArg, RECORD_LINGER_MS, StepBatcher } from './batch.js'
import { binaryCaller } from './ioredis-binary.js'
import { DETECTOR_LIBRARY, type DetectorScript, STEPS } from './script.js'
import { SetTexts } from './set-texts.js'
import {
  DEFAULT_MAX_LOG,
  DEFAULT_TTL_MS,
  type DetectionRecord,
  type DetectorStore,
  type SubjectView,
} from './types.js'

type Arg = string | number | Buffer

export interface RedisDetectorStoreOptions {
  /** An ioredis client (Redis or Cluster) or a node-redis client; left open by close(). */
  client: RedisClient
  /** Key prefix (the gateway's `prefix`). */
  prefix?: string
  ttlMs?: number
  maxLog?: number
  /**
   * How long a record step (after a request) waits for a check step to share a script call with
   * (default 5 ms; 0: the next turn).
   */
  recordLingerMs?: number
}

/**
 * A later record step of the same subject and set folded into an earlier one of the same call
 * (batch.ts): the spend amounts summed, the larger share used (lua/record.lua keeps only whether
 * any reached the scraping share). Which arguments a record has follows from its set: [amount,
 * used], [amount] or [used]. Indexed by (spend on ? 1 : 0) + (scraping on ? 2 : 0).
 */
const sum = (into: unknown[], more: readonly unknown[], i: number) => {
  into[i] = (into[i] as number) + (more[i] as number)
}
const larger = (into: unknown[], more: readonly unknown[], i: number) => {
  into[i] = Math.max(into[i] as number, more[i] as number)
}
const RECORD_FOLDS: readonly (Fold | undefined)[] = [
  undefined,
  (into, more) => sum(into, more, 0),
  (into, more) => larger(into, more, 0),
  (into, more) => {
    sum(into, more, 0)
    larger(into, more, 1)
  },
]

const FLAGS: readonly DetectorName[] = ['loop', 'spend', 'sharedKey', 'scraping']
/** How many subjects' keys are kept (the cache is emptied when full). */
const KEY_CACHE_SIZE = 10_000

export class RedisDetectorStore implements DetectorStore {
  private readonly client: RedisClient
  private readonly prefix: string
  private readonly ttlMs: number
  private readonly maxLog: number
  private readonly batcher: StepBatcher
  /** A node-redis cluster client: each command names the key it is routed by. */
  private readonly nodeCluster: boolean
  /** The client seen through the store's adapters: here, to load the library on every master. */
  private readonly connection: RedisConnection
  /** False once the Redis showed it has no Functions (or may not use them): scripts from then on. */
  private functions = true
  private loading: Promise<void> | undefined
  private readonly sets: SetTexts
  private readonly keyCache = new Map<string, string[]>()
  /** Script calls through an ioredis client, encoded at once (ioredis-binary.ts), where it applies. */
  private readonly scriptCall: (args: Arg[]) => Promise<unknown>

  constructor(o: RedisDetectorStoreOptions) {
    if (!isIORedis(o.client) && !isNodeRedis(o.client)) {
      throw new TypeError('RedisDetectorStore client must be an ioredis or node-redis client')
    }
    this.client = o.client
    this.prefix = o.prefix ?? 'sluice:'
    this.ttlMs = o.ttlMs === undefined ? DEFAULT_TTL_MS : requirePositiveInteger(o.ttlMs, 'ttlMs')
    this.maxLog = o.maxLog === undefined ? DEFAULT_MAX_LOG : requirePositiveInteger(o.maxLog, 'maxLog')
    this.sets = new SetTexts(this.ttlMs)
    const cluster = isIORedis(o.client) ? isIORedisCluster(o.client) : isNodeRedisCluster(o.client)
    this.connection = isIORedis(o.client)
      ? new IORedisConnection(o.client)
      : new NodeRedisConnection(o.client)
    this.nodeCluster = cluster && !isIORedis(o.client)
    this.scriptCall = (isIORedis(o.client) && binaryCaller(o.client)) || ((args) => this.command(args))
    // 0 is allowed (the next turn), unlike the other durations.
    const linger =
      o.recordLingerMs === undefined
        ? RECORD_LINGER_MS
        : o.recordLingerMs === 0
          ? 0
          : requirePositiveInteger(o.recordLingerMs, 'recordLingerMs')
    this.batcher = new StepBatcher((keys, args) => this.run(STEPS, keys, args), cluster, linger)
  }

  private command(args: Arg[]): Promise<unknown> {
    const c = this.client as unknown as {
      call?: (...a: Arg[]) => Promise<unknown>
      sendCommand?: (...a: unknown[]) => Promise<unknown>
    }
    if (isIORedis(this.client)) return c.call!(...args)
    // A node-redis cluster client routes by the key it is given first; a single client takes
    // the command alone. ioredis finds the key itself.
    // (Buffers go as they are: a loop fingerprint's bytes.)
    const strings = args.map((a) => (a instanceof Buffer ? a : String(a)))
    if (this.nodeCluster) return c.sendCommand!(firstKey(args), false, strings)
    return c.sendCommand!(strings)
  }

  /**
   * One script call: as the Redis Function (FCALL), loading the library first where a node does not
   * have it (a new node, a restart, FUNCTION FLUSH: nothing ran, so the call is simply made again);
   * as a script (EVALSHA, then EVAL after NOSCRIPT) where Functions are missing or not allowed.
   */
  private async run(
    script: DetectorScript,
    keys: string[],
    args: Arg[],
    retried = false,
  ): Promise<unknown[]> {
    if (this.functions) {
      try {
        return (await this.scriptCall(['FCALL', script.fn, keys.length, ...keys, ...args])) as unknown[]
      } catch (error) {
        const message = String((error as Error).message)
        if (/function not found/i.test(message) && !retried) {
          await this.loadLibrary()
          return this.run(script, keys, args, true)
        }
        if (!NO_FUNCTIONS.test(message)) throw error
        this.functions = false
      }
    }
    try {
      return (await this.scriptCall(['EVALSHA', script.sha, keys.length, ...keys, ...args])) as unknown[]
    } catch (error) {
      if (!String((error as Error).message).includes('NOSCRIPT')) throw error
      return (await this.scriptCall(['EVAL', script.source, keys.length, ...keys, ...args])) as unknown[]
    }
  }

  /** Loads the library on the Redis, or on every master of a cluster (replicas copy it). */
  private loadLibrary(): Promise<void> {
    this.loading ??= this.connection
      .loadLibrary(DETECTOR_LIBRARY)
      .catch((error: unknown) => {
        if (!NO_FUNCTIONS.test(String((error as Error).message))) throw error
        this.functions = false
      })
      .finally(() => {
        this.loading = undefined
      })
    return this.loading
  }

  /**
   * The subject's keys: its hash, loop fingerprints (one string, oldest first, each entry stamped:
   * `:s`, not the unstamped `:l` nor the newest-first `:f` of earlier versions, which are left to
   * expire), address and country hashes, allow key, under one hash tag.
   */
  keys(subject: string): { state: string; loop: string; addrs: string; countries: string; allow: string } {
    const base = `${this.prefix}det:{${subject.replace(/[{}]/g, '_')}}`
    return {
      state: base,
      loop: `${base}:s`,
      addrs: `${base}:a`,
      countries: `${base}:c`,
      allow: `${base}:allow`,
    }
  }

  async now(): Promise<number> {
    const [s, us] = (await this.command(['TIME'])) as [string, string]
    return Number(s) * 1000 + Math.floor(Number(us) / 1000)
  }

  async check(subject: string, step: CheckStep): Promise<CheckOutcome> {
    const l = step.loop
    const a = step.address
    const c = a?.country
    // As lua/check.lua reads them: the set, then the request's own facts, each only when its
    // detector looks: the fingerprint as the step's argument, the address and the country as
    // texts sent once a call (most of a subject's requests come from one address).
    const set = this.sets.checkSet(step)
    const args: LoopArg[] = l === undefined ? [] : [loopArg(l)]
    const texts = a === undefined ? undefined : c === undefined ? [a.address] : [a.address, c.code]
    const r = await this.batcher.step('c', this.subjectKeys(subject), set, args, undefined, texts)
    // lua/check.lua: [] when nothing happened, else allow-listed, the refusal, then what was raised.
    if (r.length === 0) return { allowed: false, refused: undefined, raised: [] }
    const refusedBy = String(r[1])
    const retry = Number(r[3])
    return {
      allowed: Number(r[0]) === 1,
      refused:
        refusedBy === ''
          ? undefined
          : {
              detector: refusedBy as DetectorName,
              level: Number(r[2]),
              retryAfterMs: retry === -1 ? Number.POSITIVE_INFINITY : retry,
            },
      raised: raisedOf(r.slice(4), ['countries', 'by']),
    }
  }

  async record(subject: string, step: RecordStep): Promise<Raised[]> {
    const sp = step.spend
    const sc = step.scrape
    const set = this.sets.recordSet(step)
    const args: Arg[] = []
    if (sp !== undefined) args.push(sp.amount)
    if (sc !== undefined) args.push(sc.used)
    return raisedOf(
      await this.batcher.step(
        'r',
        this.subjectKeys(subject),
        set,
        args,
        RECORD_FOLDS[(sp === undefined ? 0 : 1) + (sc === undefined ? 0 : 2)],
      ),
    )
  }

  /**
   * A subject's keys as lua/batch.lua takes them, kept for the subjects seen last (a busy subject
   * steps on every request; its keys are the same five strings every time).
   */
  private subjectKeys(subject: string): string[] {
    let keys = this.keyCache.get(subject)
    if (keys === undefined) {
      const k = this.keys(subject)
      keys = [k.state, k.loop, k.addrs, k.allow, k.countries]
      if (this.keyCache.size >= KEY_CACHE_SIZE) this.keyCache.clear()
      this.keyCache.set(subject, keys)
    }
    return keys
  }

  async failure(step: StuffingStep): Promise<Raised[]> {
    const base = `${this.prefix}det:{stuffing}`
    const prefix = step.prefix ?? ''
    // As lua/subject.lua set_of and lua/failure.lua read them; the prefix's set only when it is
    // counted (lua/failure.lua reads the prefix from the key's name).
    const set = `${step.windowMs},${step.alertAt},${step.addressesAt},${step.prefixAddressesAt},${step.maxPrefixes}`
    const own = prefix !== '' && step.prefixAddressesAt > 0 ? { key: `${base}:p:${prefix}` } : 0
    const r = await this.batcher.step('f', [base, `${base}:a`], set, [step.address, own])
    return raisedOf(r, ['prefix'])
  }

  async clear(subject: string, detector?: DetectorName): Promise<void> {
    if (detector === 'stuffing') {
      const base = `${this.prefix}det:{stuffing}`
      await this.command(['DEL', base, `${base}:a`])
      return
    }
    const k = this.keys(subject)
    for (const name of detector === undefined ? FLAGS : [detector]) {
      await this.command(['HDEL', k.state, `${name}.lv`, `${name}.u`])
      if (name === 'loop') {
        await this.command(['DEL', k.loop])
        await this.command(['HDEL', k.state, 'rm', 'rn'])
      } else if (name === 'sharedKey') {
        await this.command(['DEL', k.addrs, k.countries])
        await this.command(['HDEL', k.state, 'he', 'hp', 'hx', 'hb', 'hn', 'ao', 'co'])
      } else if (name === 'spend') await this.command(['HSET', k.state, 'sh', 0])
      else if (name === 'scraping') await this.command(['HDEL', k.state, 'cm', 'chi', 'cc'])
    }
  }

  async allow(subject: string, forMs?: number): Promise<void> {
    const key = this.keys(subject).allow
    if (forMs === 0) await this.command(['DEL', key])
    else if (forMs === undefined) await this.command(['SET', key, -1])
    else await this.command(['SET', key, (await this.now()) + forMs, 'PX', forMs])
  }

  async seed(subject: string, perBucket: number): Promise<void> {
    const key = this.keys(subject).state
    await this.command(['HSET', key, 'sb', perBucket])
    await this.command(['PEXPIRE', key, this.ttlMs])
    // The scripts push the hash's expiry on by what `xs` says (lua/subject.lua renew): no longer so.
    await this.command(['HDEL', key, 'xs'])
  }

  async inspect(subject: string): Promise<SubjectView> {
    const k = this.keys(subject)
    const now = await this.now()
    const pairs = (await this.command(['HGETALL', k.state])) as string[] | Record<string, string>
    const h: Record<string, string> = {}
    if (Array.isArray(pairs)) for (let i = 0; i < pairs.length; i += 2) h[pairs[i]!] = pairs[i + 1]!
    else Object.assign(h, pairs)
    const flags: SubjectView['flags'] = {}
    for (const name of FLAGS) {
      const f: Flag = { lv: Number(h[`${name}.lv`] ?? 0), until: Number(h[`${name}.u`] ?? 0) }
      if (f.lv > 0 && (f.until === 0 || f.until > now)) flags[name] = f
    }
    const addrs = (await this.command(['HKEYS', k.addrs])) as string[]
    const countries = (await this.command(['HKEYS', k.countries])) as string[]
    const allow = (await this.command(['GET', k.allow])) as string | null
    return {
      subject,
      flags,
      baseline: Number(h.sb ?? 0),
      addresses: addrs,
      countries,
      usualAddresses: Number(h.hb ?? 0),
      allow: allow === null ? 0 : Number(allow),
    }
  }

  async log(record: DetectionRecord): Promise<void> {
    const key = `${this.prefix}det:log`
    await this.command(['LPUSH', key, JSON.stringify(record)])
    await this.command(['LTRIM', key, 0, this.maxLog - 1])
  }

  async recent(limit: number): Promise<DetectionRecord[]> {
    const rows = (await this.command(['LRANGE', `${this.prefix}det:log`, 0, limit - 1])) as string[]
    return rows.map((r) => JSON.parse(String(r)) as DetectionRecord)
  }

  async close(): Promise<void> {}
}

/**
 * A loop fingerprint as a loop entry keeps it after its time (lua/loop.lua): the hash's two
 * 32-bit halves (its 16 hex digits), then the SimHash's hi and lo, each little-endian; with the
 * four as int32s, which the batcher compares with the call's other checks (batch.ts loopMatches).
 */
function loopArg(l: LoopStep): LoopArg {
  const h0 = Number.parseInt(l.hash.slice(0, 8), 16) | 0
  const h1 = Number.parseInt(l.hash.slice(8, 16), 16) | 0
  const hi = l.hi | 0
  const lo = l.lo | 0
  const b = Buffer.allocUnsafe(16)
  b.writeInt32LE(h0, 0)
  b.writeInt32LE(h1, 4)
  b.writeInt32LE(hi, 8)
  b.writeInt32LE(lo, 12)
  return { fingerprint: b, words: [h0, h1, hi, lo], distance: l.params.distance }
}

/**
 * Raised detections from a script's reply: detector, level, value, threshold, addresses, then the
 * `extra` items — a key prefix (failed keys), or a shared key's countries and which count crossed
 * ('' when countries are not counted).
 */
function raisedOf(items: unknown[], extra: readonly ('prefix' | 'countries' | 'by')[] = []): Raised[] {
  const out: Raised[] = []
  const width = 5 + extra.length
  for (let i = 0; i + width - 1 < items.length; i += width) {
    const r: Raised = {
      detector: String(items[i]) as DetectorName,
      level: Number(items[i + 1]),
      value: Number(items[i + 2]),
      threshold: Number(items[i + 3]),
    }
    const addresses = String(items[i + 4])
    if (addresses !== '') r.addresses = addresses.split(',')
    else if (r.detector === 'sharedKey' || r.detector === 'stuffing') r.addresses = []
    const more = Object.fromEntries(extra.map((name, j) => [name, String(items[i + 5 + j])]))
    if (more.prefix !== undefined && more.prefix !== '') r.prefix = more.prefix
    if (more.by === 'addresses' || more.by === 'countries') {
      r.by = more.by
      r.countries = more.countries === '' || more.countries === undefined ? [] : more.countries.split(',')
    }
    out.push(r)
  }
  return out
}

/** The key a command is routed by on a cluster: a script's first key, else the first argument. */
function firstKey(args: Arg[]): string | undefined {
  const name = String(args[0]).toUpperCase()
  if (name === 'EVALSHA' || name === 'EVAL' || name === 'FCALL')
    return Number(args[2]) > 0 ? String(args[3]) : undefined
  if (name === 'TIME') return undefined
  return String(args[1])
}
