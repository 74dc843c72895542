import calculateSlot from 'cluster-key-slot'
import { Cluster, type ClusterOptions, Redis, type RedisOptions } from 'ioredis'
import { describe, requirePositiveInteger, SluiceInputError } from '../../core/errors.js'
import { StoreUnavailableError } from '../errors.js'
import type { Store, StoreOp, StoreResult } from '../types.js'
import { decodeBatch, encodeBatch } from './encode.js'
import { APPLY_FUNCTION, APPLY_LIBRARY, APPLY_LUA } from './script.js'

export interface RedisStoreOptions {
  /** An ioredis client (Redis or Cluster). The store never closes a client it was given. */
  client?: Redis | Cluster
  /** Or a redis:// URL: the store makes its own client (see redisClientOptions) and closes it on close(). */
  url?: string
  /** Or the redis:// URLs of some Redis Cluster nodes: the store makes its own Cluster client. */
  nodes?: string[]
  /** Most ops sent in one script call (default 128). Ops issued in the same event-loop turn share calls. */
  maxBatch?: number
}

/** Reconnect fast (50, 100, 150, 200, 200 … ms) so that decisions are verified again soon after an outage. */
const reconnectDelay = (attempt: number) => Math.min(attempt * 50, 200)

/**
 * ioredis options for a client a limiter can rely on: a command is never queued while the
 * connection is down (it fails at once and the outage policy answers), commands in flight when
 * the connection drops fail instead of being sent again after reconnecting (a charge must not be
 * applied twice, nor long after its request was answered), and reconnection is quick.
 */
export function redisClientOptions(overrides: RedisOptions = {}): RedisOptions {
  return {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    retryStrategy: reconnectDelay,
    connectTimeout: 2_000,
    ...overrides,
  }
}

/**
 * The same for Redis Cluster: node connections reconnect quickly, a command to a node that is
 * down fails at once, and CLUSTERDOWN is not retried behind the caller's back.
 */
export function clusterClientOptions(overrides: ClusterOptions = {}): ClusterOptions {
  return {
    enableOfflineQueue: false,
    clusterRetryStrategy: reconnectDelay,
    clusterNodeRetryStrategy: reconnectDelay,
    retryDelayOnClusterDown: 0,
    slotsRefreshTimeout: 1_000,
    ...overrides,
    redisOptions: {
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      connectTimeout: 2_000,
      ...overrides.redisOptions,
    },
  }
}

const REDIS_URL = /^rediss?:\/\//

function clusterNode(url: string): { host: string; port: number } {
  const u = new URL(url)
  return { host: u.hostname, port: Number(u.port || 6379) }
}

interface Pending {
  op: StoreOp
  resolve: (result: StoreResult) => void
  reject: (error: unknown) => void
}

type ApplyCommand = (numKeys: number, ...args: (string | number)[]) => Promise<unknown[]>

/** What a Redis without Functions, or an ACL that forbids them, answers to FCALL or FUNCTION LOAD. */
const NO_FUNCTIONS = /unknown command|unknown subcommand|NOPERM.*'(fcall|function)/i

/**
 * State in Redis. Every op runs inside one Lua script that reads Redis TIME, so all instances
 * share one clock; ops issued in the same event-loop turn are coalesced into one script call per
 * hash slot, each op still checked and charged all or nothing.
 */
export class RedisStore implements Store {
  readonly client: Redis | Cluster
  private readonly ownsClient: boolean
  private readonly maxBatch: number
  private readonly isCluster: boolean
  private queue: Pending[] = []
  private scheduled = false
  private connectedOnce: boolean
  private firstConnection: Promise<void> | undefined
  /** False once the Redis showed it has no Functions (or may not use them): scripts from then on. */
  private functions = true
  private loading: Promise<void> | undefined

  constructor(options: RedisStoreOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new SluiceInputError(`RedisStore needs { client } or { url }, got ${describe(options)}`)
    }
    const given = [options.client, options.url, options.nodes].filter((x) => x !== undefined).length
    if (given > 1) throw new SluiceInputError('RedisStore takes one of client, url or nodes')
    if (options.client instanceof Redis || options.client instanceof Cluster) {
      this.client = options.client
      this.ownsClient = false
    } else if (options.client !== undefined) {
      throw new SluiceInputError(
        `RedisStore client must be an ioredis Redis or Cluster, got ${describe(options.client)}`,
      )
    } else if (options.nodes !== undefined) {
      const nodes = options.nodes
      if (!Array.isArray(nodes) || nodes.length === 0 || !nodes.every((n) => REDIS_URL.test(String(n)))) {
        throw new SluiceInputError(
          `RedisStore nodes must be a non-empty list of redis:// URLs, got ${describe(nodes)}`,
        )
      }
      const first = new URL(nodes[0]!)
      const auth = {
        ...(first.username ? { username: decodeURIComponent(first.username) } : {}),
        ...(first.password ? { password: decodeURIComponent(first.password) } : {}),
        ...(first.protocol === 'rediss:' ? { tls: {} } : {}),
      }
      this.client = new Cluster(nodes.map(clusterNode), clusterClientOptions({ redisOptions: auth }))
      this.ownsClient = true
    } else if (typeof options.url === 'string' && REDIS_URL.test(options.url)) {
      this.client = new Redis(options.url, redisClientOptions())
      this.ownsClient = true
    } else {
      throw new SluiceInputError(
        `RedisStore url must be a redis:// or rediss:// URL, got ${describe(options.url)}`,
      )
    }
    // An error event with no listener would crash the process; failures reach callers as rejections.
    if (this.ownsClient) this.client.on('error', () => {})
    this.connectedOnce = this.client.status === 'ready'
    if (!this.connectedOnce) {
      this.client.once('ready', () => {
        this.connectedOnce = true
      })
    }
    this.isCluster = this.client instanceof Cluster
    this.maxBatch =
      options.maxBatch === undefined ? 128 : requirePositiveInteger(options.maxBatch, 'RedisStore maxBatch')
    if (!('sluiceApply' in this.client)) this.client.defineCommand('sluiceApply', { lua: APPLY_LUA })
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
    await this.connection()
    if (!(this.client instanceof Cluster)) {
      await this.client.ping()
      return
    }
    const masters = this.client.nodes('master')
    if (masters.length === 0) throw new StoreUnavailableError('no Redis Cluster master is connected')
    await Promise.all(
      masters.map(async (node) => {
        if (node.status !== 'ready' && node.status !== 'wait') {
          throw new StoreUnavailableError(
            `Redis Cluster node ${node.options.host}:${node.options.port} is ${node.status}`,
          )
        }
        const info = String(await node.call('CLUSTER', 'INFO'))
        if (!/cluster_state:ok/.test(info)) {
          const where = `${node.options.host}:${node.options.port}`
          throw new StoreUnavailableError(`Redis Cluster node ${where} reports the cluster down`)
        }
      }),
    )
  }

  /** Resolves once the client is connected and ready (ops issued before that fail fast). */
  async whenReady(timeoutMs = 10_000): Promise<void> {
    if (this.client.status === 'ready') return
    if (this.client.status === 'wait') this.client.connect().catch(() => {})
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.client.off('ready', onReady)
        reject(new StoreUnavailableError(`Redis not ready after ${timeoutMs} ms (${this.client.status})`))
      }, timeoutMs)
      const onReady = () => {
        clearTimeout(timer)
        resolve()
      }
      this.client.once('ready', onReady)
    })
  }

  async close(): Promise<void> {
    if (this.queue.length > 0) this.flush()
    if (!this.ownsClient) return
    if (this.client.status === 'ready') await this.client.quit().catch(() => this.client.disconnect())
    else this.client.disconnect()
  }

  private flush(): void {
    this.scheduled = false
    const queue = this.queue
    this.queue = []
    if (!this.isCluster) {
      for (let i = 0; i < queue.length; i += this.maxBatch) this.send(queue.slice(i, i + this.maxBatch))
      return
    }
    const bySlot = new Map<number, Pending[]>()
    for (const p of queue) {
      const slot = calculateSlot(p.op.keys[0] ?? p.op.id)
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
    for (const group of bySlot.values()) this.send(group)
  }

  /**
   * Refuses to hand a command to a client that lost its connection: ioredis would queue it and
   * run it on reconnect, long after its caller was answered by the outage policy (a charge applied
   * twice, or for a request that was refused). While the very first connection is being made,
   * returns a promise that settles when it is made or fails; undefined means: send now.
   */
  private connection(): Promise<void> | undefined {
    const status = this.client.status
    if (status === 'ready' || status === 'wait') return undefined
    if (!this.connectedOnce && (status === 'connecting' || status === 'connect')) {
      this.firstConnection ??= new Promise<void>((resolve, reject) => {
        const done = (error?: StoreUnavailableError) => {
          this.client.off('ready', onReady)
          this.client.off('close', onClose)
          this.client.off('end', onClose)
          this.firstConnection = undefined
          if (error) reject(error)
          else resolve()
        }
        const onReady = () => done()
        const onClose = () => done(new StoreUnavailableError('could not connect to Redis'))
        this.client.once('ready', onReady)
        this.client.once('close', onClose)
        this.client.once('end', onClose)
      })
      return this.firstConnection
    }
    throw new StoreUnavailableError(`Redis connection is ${status}`)
  }

  /**
   * Runs one batch: as the Redis Function (FCALL), loading the library first where a node does not
   * have it (a new node, a restart without persistence, FUNCTION FLUSH: nothing ran, so the call is
   * simply made again); as a script (EVALSHA) on a Redis without Functions (before 7.0, or an ACL
   * that allows scripts only).
   */
  private apply(keys: string[], args: (string | number)[], retried = false): Promise<unknown[]> {
    if (this.functions === false) {
      const evalsha = (this.client as unknown as { sluiceApplyBuffer: ApplyCommand }).sluiceApplyBuffer
      return evalsha.call(this.client, keys.length, ...keys, ...args)
    }
    const call = this.client.callBuffer('FCALL', APPLY_FUNCTION, keys.length, ...keys, ...args)
    return (call as Promise<unknown[]>).catch(async (error: unknown) => {
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
      // meanwhile (ioredis would run the call after reconnecting, long after it was answered).
      this.connection()
      return this.apply(keys, args, true)
    })
  }

  /** Loads the library on the Redis, or on every master of a cluster (replicas copy it). */
  private loadLibrary(): Promise<void> {
    this.loading ??= (async () => {
      const nodes = this.client instanceof Cluster ? this.client.nodes('master') : [this.client]
      try {
        await Promise.all(nodes.map((node) => node.call('FUNCTION', 'LOAD', 'REPLACE', APPLY_LIBRARY)))
      } catch (error) {
        if (!NO_FUNCTIONS.test(error instanceof Error ? error.message : String(error))) throw error
        this.functions = false
      }
    })().finally(() => {
      this.loading = undefined
    })
    return this.loading
  }

  private send(batch: Pending[]): void {
    let connecting: Promise<void> | undefined
    try {
      connecting = this.connection()
    } catch (error) {
      for (const p of batch) p.reject(error)
      return
    }
    if (connecting !== undefined) {
      connecting.then(
        () => this.send(batch),
        (error: unknown) => {
          for (const p of batch) p.reject(error)
        },
      )
      return
    }
    const ops = batch.map((p) => p.op)
    const { keys, args } = encodeBatch(ops)
    this.apply(keys, args).then(
      (reply) => {
        let results: (StoreResult | Error)[]
        try {
          results = decodeBatch(reply, ops)
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
        for (const p of batch) p.reject(error)
      },
    )
  }
}
