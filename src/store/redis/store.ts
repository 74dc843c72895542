import calculateSlot from 'cluster-key-slot'
import { Cluster, Redis } from 'ioredis'
import { describe, requirePositiveInteger, SluiceInputError } from '../../core/errors.js'
import type { Store, StoreOp, StoreResult } from '../types.js'
import { decodeResult, encodeOp } from './encode.js'
import { APPLY_LUA } from './script.js'

export interface RedisStoreOptions {
  /** An ioredis client (Redis or Cluster). The store never closes a client it was given. */
  client?: Redis | Cluster
  /** Or a redis:// URL: the store makes its own client and closes it on close(). */
  url?: string
  /** Most ops sent in one script call (default 128). Ops issued in the same event-loop turn share calls. */
  maxBatch?: number
}

interface Pending {
  op: StoreOp
  resolve: (result: StoreResult) => void
  reject: (error: unknown) => void
}

type ApplyCommand = (numKeys: number, ...args: (string | number)[]) => Promise<string[]>

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

  constructor(options: RedisStoreOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new SluiceInputError(`RedisStore needs { client } or { url }, got ${describe(options)}`)
    }
    if (options.client !== undefined && options.url !== undefined) {
      throw new SluiceInputError('RedisStore takes either client or url, not both')
    }
    if (options.client instanceof Redis || options.client instanceof Cluster) {
      this.client = options.client
      this.ownsClient = false
    } else if (options.client !== undefined) {
      throw new SluiceInputError(
        `RedisStore client must be an ioredis Redis or Cluster, got ${describe(options.client)}`,
      )
    } else if (typeof options.url === 'string' && /^rediss?:\/\//.test(options.url)) {
      this.client = new Redis(options.url)
      this.ownsClient = true
    } else {
      throw new SluiceInputError(
        `RedisStore url must be a redis:// or rediss:// URL, got ${describe(options.url)}`,
      )
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

  async ping(): Promise<void> {
    await this.client.ping()
  }

  async close(): Promise<void> {
    if (this.queue.length > 0) this.flush()
    if (this.ownsClient) await this.client.quit()
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

  private send(batch: Pending[]): void {
    const keys: string[] = []
    const args: (string | number)[] = [batch.length]
    for (const p of batch) encodeOp(p.op, keys, args)
    const apply = (this.client as unknown as { sluiceApply: ApplyCommand }).sluiceApply
    apply.call(this.client, keys.length, ...keys, ...args).then(
      (reply) => {
        const now = Number(reply[0])
        for (let i = 0; i < batch.length; i++) {
          const p = batch[i]!
          try {
            p.resolve(decodeResult(now, reply[i + 1]!))
          } catch (error) {
            p.reject(error)
          }
        }
      },
      (error: unknown) => {
        for (const p of batch) p.reject(error)
      },
    )
  }
}
