import { createHash } from 'node:crypto'
import { StoreUnavailableError } from '../errors.js'
import {
  type Args,
  type ConnectionState,
  isNodeRedis,
  isNodeRedisCluster,
  type NodeRedisClient,
  type RedisClient,
  type RedisConnection,
  type Subscription,
  within,
} from './connection.js'
import { scanNode } from './ioredis.js'

/** RESP type code of a bulk string (node-redis' RESP_TYPES.BLOB_STRING): mapped to Buffer. */
const BLOB_STRING = 36
/** Replies as Buffers: the script's results are binary doubles. */
const BINARY = { typeMapping: { [BLOB_STRING]: Buffer } }

type Listener = (...args: never[]) => void

/** A node-redis single client as sluice calls it. */
interface NodeClientApi {
  isOpen: boolean
  /** Absent on a node-redis 5 cluster: there, open means ready. */
  isReady?: boolean
  sendCommand(args: string[], options?: object): Promise<unknown>
  on(event: string, listener: Listener): unknown
  off(event: string, listener: Listener): unknown
  connect(): Promise<unknown>
  close?(): Promise<unknown>
  quit?(): Promise<unknown>
  duplicate(): NodeClientApi
  subscribe(channel: string, listener: (message: string, channel: string) => void): Promise<unknown>
  unsubscribe(channel: string, listener?: (message: string, channel: string) => void): Promise<unknown>
}

/** A node-redis cluster as sluice calls it. */
interface NodeClusterApi extends Omit<NodeClientApi, 'sendCommand' | 'duplicate'> {
  sendCommand(
    firstKey: string | undefined,
    isReadonly: boolean,
    args: string[],
    options?: object,
  ): Promise<unknown>
  masters: { host: string; port: number }[]
  nodeClient(node: { host: string; port: number }): Promise<NodeClientApi>
  duplicate(): NodeClusterApi
}

function strings(head: string[], keys: readonly string[], args: Args): string[] {
  const out = head.slice()
  for (const k of keys) out.push(k)
  for (const a of args) out.push(typeof a === 'string' ? a : String(a))
  return out
}

/**
 * The official `redis` package (node-redis 5 or later), single client or cluster. A node-redis
 * client is connected by its owner (`await client.connect()`); the store never connects it.
 */
export class NodeRedisConnection implements RedisConnection {
  readonly kind = 'node-redis'
  readonly isCluster: boolean
  private readonly single: NodeClientApi | undefined
  private readonly cluster: NodeClusterApi | undefined
  private readonly shas = new Map<string, string>()

  constructor(readonly client: NodeRedisClient) {
    this.isCluster = isNodeRedisCluster(client)
    if (this.isCluster) this.cluster = client as unknown as NodeClusterApi
    else this.single = client as unknown as NodeClientApi
  }

  private get api(): NodeClientApi | NodeClusterApi {
    return (this.single ?? this.cluster)!
  }

  private ready(): boolean {
    const c = this.api
    return c.isReady ?? c.isOpen
  }

  state(): ConnectionState {
    const c = this.api
    if (this.ready()) return 'ready'
    return c.isOpen ? 'connecting' : 'down'
  }

  describeState(): string {
    const c = this.api
    if (this.ready()) return 'ready'
    return c.isOpen ? 'reconnecting' : 'not open (a node-redis client is opened by its owner: connect())'
  }

  onReady(listener: () => void): () => void {
    // A cluster announces itself with 'connect' once its slots are known.
    const event = this.isCluster ? 'connect' : 'ready'
    this.api.on(event, listener)
    return () => this.api.off(event, listener)
  }

  onDown(listener: () => void): () => void {
    const events = this.isCluster ? ['error', 'disconnect'] : ['error', 'end']
    for (const e of events) this.api.on(e, listener)
    return () => {
      for (const e of events) this.api.off(e, listener)
    }
  }

  connect(): void {}

  private send(keys: readonly string[], command: string[]): Promise<unknown> {
    if (this.cluster) return this.cluster.sendCommand(keys[0], false, command, BINARY)
    return this.single!.sendCommand(command, BINARY)
  }

  nodeOfSlot(slot: number): string | undefined {
    // node-redis keeps, per slot, its shard: the master and its address.
    const shards = (this.cluster as unknown as { slots?: ({ master?: { address?: string } } | undefined)[] })
      ?.slots
    return shards?.[slot]?.master?.address
  }

  fcall(fn: string, keys: readonly string[], args: Args): Promise<unknown[]> {
    return this.send(keys, strings(['FCALL', fn, String(keys.length)], keys, args)) as Promise<unknown[]>
  }

  async evalScript(script: string, keys: readonly string[], args: Args): Promise<unknown[]> {
    let sha = this.shas.get(script)
    if (sha === undefined) {
      sha = createHash('sha1').update(script).digest('hex')
      this.shas.set(script, sha)
    }
    try {
      return (await this.send(keys, strings(['EVALSHA', sha, String(keys.length)], keys, args))) as unknown[]
    } catch (error) {
      if (!/NOSCRIPT/.test(error instanceof Error ? error.message : String(error))) throw error
      return (await this.send(keys, strings(['EVAL', script, String(keys.length)], keys, args))) as unknown[]
    }
  }

  private async masters(): Promise<{ where: string; client: NodeClientApi }[]> {
    if (this.single) return [{ where: 'redis', client: this.single }]
    const masters = this.cluster!.masters
    if (masters.length === 0) throw new StoreUnavailableError('no Redis Cluster master is known')
    return Promise.all(
      masters.map(async (m) => {
        const where = `${m.host}:${m.port}`
        try {
          return { where, client: await this.cluster!.nodeClient(m) }
        } catch (error) {
          throw new StoreUnavailableError(`Redis Cluster node ${where} is not connected`, { cause: error })
        }
      }),
    )
  }

  async loadLibrary(source: string): Promise<void> {
    const nodes = await this.masters()
    await Promise.all(nodes.map((n) => n.client.sendCommand(['FUNCTION', 'LOAD', 'REPLACE', source])))
  }

  async scanKeys(pattern: string, limit: number): Promise<string[]> {
    const out = new Set<string>()
    for (const { client } of await this.masters()) {
      await scanNode(
        (cursor) => client.sendCommand(['SCAN', cursor, 'MATCH', pattern, 'COUNT', '1000']),
        out,
        limit,
      )
    }
    return [...out]
  }

  async ping(): Promise<void> {
    if (this.single) {
      await this.single.sendCommand(['PING'])
      return
    }
    const nodes = await this.masters()
    await Promise.all(
      nodes.map(async ({ where, client }) => {
        const info = String(await client.sendCommand(['CLUSTER', 'INFO']))
        if (!/cluster_state:ok/.test(info)) {
          throw new StoreUnavailableError(`Redis Cluster node ${where} reports the cluster down`)
        }
      }),
    )
  }

  async publish(channel: string, message: string): Promise<void> {
    if (this.cluster) await this.cluster.sendCommand(undefined, false, ['PUBLISH', channel, message])
    else await this.single!.sendCommand(['PUBLISH', channel, message])
  }

  async subscribe(
    channel: string,
    onMessage: (message: string) => void,
    timeoutMs: number,
    given?: RedisClient,
  ): Promise<Subscription> {
    if (given !== undefined && !isNodeRedis(given)) {
      throw new TypeError('the subscriber must be a client of the same kind as the store client')
    }
    const owned = given === undefined
    const sub = (owned ? this.api.duplicate() : given) as NodeClientApi
    if (owned) sub.on('error', () => {}) // reconnects (and subscribes again) by itself
    const listener = (message: string) => onMessage(message)
    const close = async () => {
      if (owned) await (sub.close ?? sub.quit)!.call(sub).catch(() => {})
      else await sub.unsubscribe(channel, listener).catch(() => {})
    }
    try {
      const connecting = owned ? sub.connect() : Promise.resolve()
      await within(
        connecting.then(() => sub.subscribe(channel, listener)),
        timeoutMs,
        () => new Error(`invalidation subscriber not ready after ${timeoutMs} ms`),
      )
    } catch (error) {
      await close()
      throw error
    }
    return { close }
  }

  ignoreErrors(): void {
    this.api.on('error', () => {})
  }

  async close(): Promise<void> {
    const c = this.api
    if (!c.isOpen) return
    await (c.close ?? c.quit)!.call(c)
  }
}
