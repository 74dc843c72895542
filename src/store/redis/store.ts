import calculateSlot from 'cluster-key-slot'
import { Cluster, Redis } from 'ioredis'
import { describe, requirePositiveInteger, SluiceInputError } from '../../core/errors.js'
import { StoreUnavailableError } from '../errors.js'
import type { QueueBackend, QueueingStore } from '../queue-types.js'
import type { Store, StoreOp, StoreResult } from '../types.js'
import {
  isIORedis,
  isNodeRedis,
  NO_FUNCTIONS,
  type RedisClient,
  type RedisConnection,
  within,
} from './connection.js'
import { decodeBatch, encodeBatch, flattenOps, QUEUES_BUSY_KEY, regroup } from './encode.js'
import { IORedisConnection } from './ioredis.js'
import { NodeRedisConnection } from './node-redis.js'
import { clusterClientOptions, redisClientOptions } from './options.js'
import { RedisQueues } from './queue.js'
import { APPLY_FUNCTION, APPLY_LIBRARY, APPLY_LUA, GATE_FUNCTION, NODE_FUNCTION } from './script.js'

export { clusterClientOptions, nodeRedisClientOptions, redisClientOptions } from './options.js'

export interface RedisStoreOptions {
  /**
   * A client the application already has: an ioredis `Redis` or `Cluster` (5 or 6, whichever copy
   * it was installed as), or a node-redis client or cluster (the `redis` package, 5 or later,
   * connected by its owner). The store never closes a client it was given.
   */
  client?: RedisClient
  /** Or a redis:// URL: the store makes its own ioredis client (see redisClientOptions) and closes it on close(). */
  url?: string
  /** Or the redis:// URLs of some Redis Cluster nodes: the store makes its own ioredis Cluster client. */
  nodes?: string[]
  /** Most ops sent in one script call (default 128). Ops issued in the same event-loop turn share calls. */
  maxBatch?: number
}

const REDIS_URL = /^rediss?:\/\//

function clusterNode(url: string): { host: string; port: number } {
  const u = new URL(url)
  return { host: u.hostname, port: Number(u.port || 6379) }
}

/** The client's adapter, recognised by its methods (never by instanceof: it may be another copy). */
function connectionFor(client: unknown): RedisConnection {
  if (isIORedis(client)) return new IORedisConnection(client)
  if (isNodeRedis(client)) {
    if (typeof (client as { withTypeMapping?: unknown }).withTypeMapping !== 'function') {
      throw new SluiceInputError(
        'RedisStore client is a node-redis client older than version 5, which sluice does not support: use redis@5 or later, or ioredis',
      )
    }
    return new NodeRedisConnection(client)
  }
  throw new SluiceInputError(
    `RedisStore client must be an ioredis Redis or Cluster (5 or 6) or a node-redis client or cluster (5 or later), got ${describe(client)}`,
  )
}

interface Pending {
  op: StoreOp
  resolve: (result: StoreResult) => void
  reject: (error: unknown) => void
}

/**
 * State in Redis. Every op runs inside one Lua script that reads Redis TIME, so all instances
 * share one clock; ops issued in the same event-loop turn are coalesced into one script call per
 * hash slot, each op still checked and charged all or nothing.
 */
export class RedisStore implements Store, QueueingStore {
  /** The client in use: the one given, or the ioredis client the store made. */
  readonly client: RedisClient
  private readonly connection: RedisConnection
  private readonly ownsClient: boolean
  private readonly maxBatch: number
  private readonly isCluster: boolean
  /** The busy string of guarded ops (lua/busy.lua): on one Redis only. */
  private readonly busyKey: string | undefined
  private queue: Pending[] = []
  private scheduled = false
  private connectedOnce: boolean
  private firstConnection: Promise<void> | undefined
  /** False once the Redis showed it has no Functions (or may not use them): scripts from then on. */
  private functions = true
  private loading: Promise<void> | undefined
  private fairQueues: RedisQueues | undefined

  constructor(options: RedisStoreOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new SluiceInputError(`RedisStore needs { client } or { url }, got ${describe(options)}`)
    }
    const given = [options.client, options.url, options.nodes].filter((x) => x !== undefined).length
    if (given > 1) throw new SluiceInputError('RedisStore takes one of client, url or nodes')
    if (options.client !== undefined) {
      this.connection = connectionFor(options.client)
      this.ownsClient = false
    } else if (options.nodes !== undefined) {
      const nodes = options.nodes
      if (!Array.isArray(nodes) || nodes.length === 0 || !nodes.every((n) => REDIS_URL.test(String(n)))) {
        throw new SluiceInputError(
          `RedisStore nodes must be a non-empty list of redis:// URLs, got ${describeUrls(nodes)}`,
        )
      }
      const first = new URL(nodes[0]!)
      const auth = {
        ...(first.username ? { username: decodeURIComponent(first.username) } : {}),
        ...(first.password ? { password: decodeURIComponent(first.password) } : {}),
        ...(first.protocol === 'rediss:' ? { tls: {} } : {}),
      }
      const cluster = new Cluster(nodes.map(clusterNode), clusterClientOptions({ redisOptions: auth }))
      this.connection = new IORedisConnection(cluster)
      this.ownsClient = true
    } else if (typeof options.url === 'string' && REDIS_URL.test(options.url)) {
      this.connection = new IORedisConnection(new Redis(options.url, redisClientOptions()))
      this.ownsClient = true
    } else {
      throw new SluiceInputError(
        `RedisStore url must be a redis:// or rediss:// URL, got ${describeUrls(options.url)}`,
      )
    }
    this.client = this.connection.client
    // An error event with no listener would crash the process; failures reach callers as rejections.
    if (this.ownsClient) this.connection.ignoreErrors()
    this.connectedOnce = this.connection.state() === 'ready'
    if (!this.connectedOnce) {
      const stop = this.connection.onReady(() => {
        this.connectedOnce = true
        stop()
      })
    }
    this.isCluster = this.connection.isCluster
    this.busyKey = this.isCluster ? undefined : QUEUES_BUSY_KEY
    this.maxBatch =
      options.maxBatch === undefined ? 128 : requirePositiveInteger(options.maxBatch, 'RedisStore maxBatch')
  }

  /** Fair queues on this Redis (docs/queueing.md), shared by every instance that uses it. */
  get queues(): QueueBackend {
    this.fairQueues ??= new RedisQueues(this, this.isCluster)
    return this.fairQueues
  }

  execute(op: StoreOp): Promise<StoreResult> {
    return new Promise((resolve, reject) => {
      this.queue.push({ op, resolve, reject })
      if (!this.scheduled) {
        this.scheduled = true
        setImmediate(() => this.flush())
      }
    })
  }

  /**
   * Resolves when the store can take ops: a single Redis answers PING; every master of a cluster
   * answers and reports cluster_state:ok (a cluster with a failed master refuses writes).
   */
  async ping(): Promise<void> {
    await this.connect()
    await this.connection.ping()
  }

  /** Resolves once the client is connected and ready (ops issued before that fail fast). */
  async whenReady(timeoutMs = 10_000): Promise<void> {
    if (this.connection.state() === 'ready') return
    this.connection.connect()
    let stop: (() => void) | undefined
    const ready = new Promise<void>((resolve) => {
      stop = this.connection.onReady(resolve)
    })
    await within(
      ready,
      timeoutMs,
      () =>
        new StoreUnavailableError(
          `Redis not ready after ${timeoutMs} ms (${this.connection.describeState()})`,
        ),
    ).finally(stop)
  }

  async close(): Promise<void> {
    if (this.queue.length > 0) this.flush()
    if (this.ownsClient) await this.connection.close()
  }

  private flush(): void {
    this.scheduled = false
    const queue = this.queue
    this.queue = []
    if (!this.isCluster) {
      for (let i = 0; i < queue.length; i += this.maxBatch) this.send(queue.slice(i, i + this.maxBatch))
      return
    }
    this.sendBySlot(queue, true)
  }

  /**
   * A cluster's ops grouped by hash slot (a group sent as soon as it is full), then the groups sent
   * merged per master (`byNode`, see sendByNode) or one call each.
   */
  private sendBySlot(queue: Pending[], byNode: boolean): void {
    const bySlot = new Map<number, Pending[]>()
    for (const p of queue) {
      const slot = calculateSlot(p.op.keys[0] ?? p.op.id)
      if (p.op.linked?.some((part) => calculateSlot(part.keys[0] ?? part.stateKey) !== slot)) {
        p.reject(
          new SluiceInputError(
            'the subjects of one composed decision must share a Redis Cluster hash slot: give compose() a hashTag (e.g. the team)',
          ),
        )
        continue
      }
      let group = bySlot.get(slot)
      if (group === undefined) {
        group = []
        bySlot.set(slot, group)
      }
      group.push(p)
      if (group.length >= this.maxBatch) {
        this.send(group)
        bySlot.delete(slot)
      }
    }
    if (byNode) this.sendByNode(bySlot)
    else for (const group of bySlot.values()) this.send(group)
  }

  /**
   * Sends a cluster's groups of one hash slot each, merged per master where the client knows which
   * master serves the slot (one call per node and batch through NODE_FUNCTION rather than one per
   * slot: with many subjects nearly every op has a slot of its own); one call per slot otherwise.
   */
  private sendByNode(bySlot: Map<number, Pending[]>): void {
    const byNode = new Map<string, { batch: Pending[]; slots: number }>()
    for (const [slot, group] of bySlot) {
      const node = this.functions === false ? undefined : this.connection.nodeOfSlot(slot)
      if (node === undefined) {
        this.send(group)
        continue
      }
      let merged = byNode.get(node)
      if (merged !== undefined && merged.batch.length + group.length > this.maxBatch) {
        this.send(merged.batch, merged.slots > 1)
        merged = undefined
      }
      if (merged === undefined) {
        merged = { batch: [], slots: 0 }
        byNode.set(node, merged)
      }
      for (const p of group) merged.batch.push(p)
      merged.slots++
    }
    for (const { batch, slots } of byNode.values()) this.send(batch, slots > 1)
  }

  /**
   * Refuses to hand a command to a client that lost its connection: the client would queue it and
   * run it on reconnect, long after its caller was answered by the outage policy (a charge applied
   * twice, or for a request that was refused). While the very first connection is being made,
   * returns a promise that settles when it is made or fails; undefined means: send now.
   */
  private connect(): Promise<void> | undefined {
    const state = this.connection.state()
    if (state === 'ready' || state === 'idle') return undefined
    if (!this.connectedOnce && state === 'connecting') {
      this.firstConnection ??= new Promise<void>((resolve, reject) => {
        const done = (error?: StoreUnavailableError) => {
          stopReady()
          stopDown()
          this.firstConnection = undefined
          if (error) reject(error)
          else resolve()
        }
        const stopReady = this.connection.onReady(() => done())
        const stopDown = this.connection.onDown(() =>
          done(new StoreUnavailableError('could not connect to Redis')),
        )
      })
      return this.firstConnection
    }
    throw new StoreUnavailableError(`Redis connection is ${this.connection.describeState()}`)
  }

  /**
   * Runs one batch: as the Redis Function (FCALL), loading the library first where a node does not
   * have it (a new node, a restart without persistence, FUNCTION FLUSH: nothing ran, so the call is
   * simply made again); as a script (EVALSHA) on a Redis without Functions (before 7.0, or an ACL
   * that allows scripts only).
   */
  private apply(
    keys: string[],
    args: (string | number)[],
    retried = false,
    fn = APPLY_FUNCTION,
  ): Promise<unknown[]> {
    if (this.functions === false) {
      // A node batch exists only as a Function: its ops go again one slot at a time.
      if (fn === NODE_FUNCTION)
        return Promise.reject(new NodeBatchRefused('Redis Functions are not available'))
      return this.connection.evalScript(APPLY_LUA, keys, args)
    }
    return this.connection.fcall(fn, keys, args).catch(async (error: unknown) => {
      if (retried) throw error
      const message = error instanceof Error ? error.message : String(error)
      if (/function not found/i.test(message)) {
        await this.loadLibrary()
      } else if (NO_FUNCTIONS.test(message)) {
        this.functions = false
      } else {
        throw error
      }
      // The library is loaded (or scripts will do): once more, unless the connection went away
      // meanwhile (the client would run the call after reconnecting, long after it was answered).
      this.connect()
      return this.apply(keys, args, true, fn)
    })
  }

  /**
   * @internal One step of a queue (lua/queue.lua: its args start with 'gate'), alone in its call:
   * used by RedisQueues (queue.ts). Fails fast while the connection is down, as ops do.
   */
  async gate(keys: string[], args: (string | number)[]): Promise<unknown[]> {
    const connecting = this.connect()
    if (connecting !== undefined) await connecting
    return this.apply(keys, args, false, GATE_FUNCTION)
  }

  /** @internal Key names matching a glob pattern, on every master (RedisQueues' admin view). */
  async scanKeys(pattern: string, limit: number): Promise<string[]> {
    const connecting = this.connect()
    if (connecting !== undefined) await connecting
    return this.connection.scanKeys(pattern, limit)
  }

  /** Loads the library on the Redis, or on every master of a cluster (replicas copy it). */
  private loadLibrary(): Promise<void> {
    this.loading ??= this.connection
      .loadLibrary(APPLY_LIBRARY)
      .catch((error: unknown) => {
        if (!NO_FUNCTIONS.test(error instanceof Error ? error.message : String(error))) throw error
        this.functions = false
      })
      .finally(() => {
        this.loading = undefined
      })
    return this.loading
  }

  /** Sends one batch: as one call over several hash slots of one cluster node when `nodeWide`. */
  private send(batch: Pending[], nodeWide = false): void {
    let connecting: Promise<void> | undefined
    try {
      connecting = this.connect()
    } catch (error) {
      for (const p of batch) p.reject(error)
      return
    }
    if (connecting !== undefined) {
      connecting.then(
        () => this.send(batch, nodeWide),
        (error: unknown) => {
          for (const p of batch) p.reject(error)
        },
      )
      return
    }
    const ops = batch.map((p) => p.op)
    const { parts, joined } = flattenOps(ops)
    const { keys, args } = encodeBatch(parts, joined, this.busyKey)
    const call = nodeWide
      ? this.apply([keys[0]!], [keys.length, ...keys, ...args], false, NODE_FUNCTION)
      : this.apply(keys, args)
    call.then(
      (reply) => {
        let results: (StoreResult | Error)[]
        try {
          results = regroup(ops, decodeBatch(reply, parts))
        } catch (error) {
          // A reply this store cannot read fails its ops; none may be left waiting.
          for (const p of batch) p.reject(error)
          return
        }
        for (let i = 0; i < batch.length; i++) {
          const r = results[i]!
          if (r instanceof Error) batch[i]!.reject(r)
          else batch[i]!.resolve(r)
        }
      },
      (error: unknown) => {
        // Refused before it wrote anything (apply.lua reads every key first): sent again by slot.
        if (
          nodeWide &&
          (error instanceof NodeBatchRefused || NOT_THIS_NODE.test(String((error as Error)?.message)))
        ) {
          this.sendBySlot(batch, false)
          return
        }
        for (const p of batch) p.reject(error)
      },
    )
  }
}

/** A node batch that cannot run as one (no Functions): its ops are sent one slot at a time. */
class NodeBatchRefused extends Error {
  override name = 'NodeBatchRefused'
}

/** What a cluster node answers a node batch naming a key of a slot it does not serve (now). */
const NOT_THIS_NODE = /non local key|CROSSSLOT|TRYAGAIN|^MOVED |^ASK |CLUSTERDOWN/

/** Names what was given instead of URLs, without printing a password a URL may carry. */
function describeUrls(value: unknown): string {
  const one = (v: unknown) => {
    if (typeof v !== 'string') return describe(v)
    try {
      const u = new URL(v)
      if (u.password) u.password = '***'
      return JSON.stringify(u.toString())
    } catch {
      return `a string that is not a URL (${v.length} characters)`
    }
  }
  return Array.isArray(value) ? `[${value.map(one).join(', ')}]` : one(value)
}
