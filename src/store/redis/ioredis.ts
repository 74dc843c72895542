import { StoreUnavailableError } from '../errors.js'
import {
  type Args,
  type ConnectionState,
  type IORedisClient,
  isIORedis,
  isIORedisCluster,
  type RedisClient,
  type RedisConnection,
  type Subscription,
  within,
} from './connection.js'

/** The ioredis API as sluice calls it (the same in 5 and 6, Redis and Cluster). */
interface IORedisApi {
  status: string
  options?: { host?: string; port?: number }
  callBuffer(command: string, ...args: (string | number)[]): Promise<unknown>
  call(command: string, ...args: (string | number)[]): Promise<unknown>
  defineCommand(name: string, definition: { lua: string }): void
  on(event: string, listener: (...args: never[]) => void): unknown
  once(event: string, listener: (...args: never[]) => void): unknown
  off(event: string, listener: (...args: never[]) => void): unknown
  connect(): Promise<unknown>
  disconnect(): void
  quit(): Promise<unknown>
  ping(): Promise<unknown>
  publish(channel: string, message: string): Promise<unknown>
  subscribe(channel: string): Promise<unknown>
  duplicate(): IORedisApi
  nodes(role: 'master'): IORedisApi[]
  [command: string]: unknown
}

/** Collects the keys a SCAN over one node finds into `out`, until `limit` or the end. */
export async function scanNode(
  scan: (cursor: string) => Promise<unknown>,
  out: Set<string>,
  limit: number,
): Promise<void> {
  let cursor = '0'
  do {
    const reply = (await scan(cursor)) as [unknown, unknown[]]
    cursor = String(reply[0])
    for (const key of reply[1]) {
      if (out.size >= limit) return
      out.add(String(key))
    }
  } while (cursor !== '0')
}

/** The script command sluice defines on an ioredis client for the EVALSHA fallback. */
const SCRIPT_COMMAND = 'sluiceApply'

export class IORedisConnection implements RedisConnection {
  readonly kind = 'ioredis'
  readonly isCluster: boolean
  private readonly api: IORedisApi

  constructor(readonly client: IORedisClient) {
    this.api = client as unknown as IORedisApi
    this.isCluster = isIORedisCluster(client)
  }

  state(): ConnectionState {
    switch (this.api.status) {
      case 'ready':
        return 'ready'
      case 'wait':
        return 'idle'
      case 'connecting':
      case 'connect':
        return 'connecting'
      default:
        return 'down'
    }
  }

  describeState(): string {
    return this.api.status
  }

  onReady(listener: () => void): () => void {
    this.api.on('ready', listener)
    return () => this.api.off('ready', listener)
  }

  onDown(listener: () => void): () => void {
    this.api.on('close', listener)
    this.api.on('end', listener)
    return () => {
      this.api.off('close', listener)
      this.api.off('end', listener)
    }
  }

  connect(): void {
    if (this.api.status === 'wait') this.api.connect().catch(() => {})
  }

  nodeOfSlot(slot: number): string | undefined {
    if (!this.isCluster) return undefined
    // ioredis keeps, per slot, the node keys of its master then its replicas.
    return (this.api as unknown as { slots?: (string[] | undefined)[] }).slots?.[slot]?.[0]
  }

  fcall(fn: string, keys: readonly string[], args: Args): Promise<unknown[]> {
    return this.api.callBuffer('FCALL', fn, keys.length, ...keys, ...args) as Promise<unknown[]>
  }

  /** ioredis' own script command: EVALSHA, and EVAL again after NOSCRIPT. */
  evalScript(script: string, keys: readonly string[], args: Args): Promise<unknown[]> {
    if (!(SCRIPT_COMMAND in this.api)) this.api.defineCommand(SCRIPT_COMMAND, { lua: script })
    const run = this.api[`${SCRIPT_COMMAND}Buffer`] as (...a: (string | number)[]) => Promise<unknown[]>
    return run.call(this.api, keys.length, ...keys, ...args)
  }

  async loadLibrary(source: string): Promise<void> {
    const nodes = this.isCluster ? this.api.nodes('master') : [this.api]
    await Promise.all(nodes.map((node) => node.call('FUNCTION', 'LOAD', 'REPLACE', source)))
  }

  async scanKeys(pattern: string, limit: number): Promise<string[]> {
    const nodes = this.isCluster ? this.api.nodes('master') : [this.api]
    const out = new Set<string>()
    for (const node of nodes) {
      await scanNode((cursor) => node.call('SCAN', cursor, 'MATCH', pattern, 'COUNT', 1000), out, limit)
    }
    return [...out]
  }

  async ping(): Promise<void> {
    if (!this.isCluster) {
      await this.api.ping()
      return
    }
    const masters = this.api.nodes('master')
    if (masters.length === 0) throw new StoreUnavailableError('no Redis Cluster master is connected')
    await Promise.all(
      masters.map(async (node) => {
        const where = `${node.options?.host}:${node.options?.port}`
        if (node.status !== 'ready' && node.status !== 'wait') {
          throw new StoreUnavailableError(`Redis Cluster node ${where} is ${node.status}`)
        }
        const info = String(await node.call('CLUSTER', 'INFO'))
        if (!/cluster_state:ok/.test(info)) {
          throw new StoreUnavailableError(`Redis Cluster node ${where} reports the cluster down`)
        }
      }),
    )
  }

  async publish(channel: string, message: string): Promise<void> {
    await this.api.publish(channel, message)
  }

  async subscribe(
    channel: string,
    onMessage: (message: string) => void,
    timeoutMs: number,
    given?: RedisClient,
  ): Promise<Subscription> {
    if (given !== undefined && !isIORedis(given)) {
      throw new TypeError('the subscriber must be a client of the same kind as the store client')
    }
    const owned = given === undefined
    const sub = owned ? this.api.duplicate() : (given as unknown as IORedisApi)
    // A duplicate reconnects (and subscribes again) by itself; errors meanwhile are expected.
    if (owned) sub.on('error', () => {})
    const listener = (ch: string, message: string) => {
      if (ch === channel) onMessage(message)
    }
    sub.on('message', listener as (...args: never[]) => void)
    const close = async () => {
      sub.off('message', listener as (...args: never[]) => void)
      if (owned) sub.disconnect()
      else await sub.call('UNSUBSCRIBE', channel).catch(() => {})
    }
    try {
      if (sub.status === 'wait') sub.connect().catch(() => {})
      if (sub.status !== 'ready') {
        let stop: (() => void) | undefined
        const ready = new Promise<void>((resolve) => {
          sub.once('ready', resolve)
          stop = () => sub.off('ready', resolve)
        })
        await within(
          ready,
          timeoutMs,
          () => new Error(`invalidation subscriber not ready after ${timeoutMs} ms (${sub.status})`),
        ).finally(stop)
      }
      // After a reconnect ioredis subscribes again by itself (autoResubscribe).
      await sub.subscribe(channel)
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
    if (this.api.status === 'ready') await this.api.quit().catch(() => this.api.disconnect())
    else this.api.disconnect()
  }
}
