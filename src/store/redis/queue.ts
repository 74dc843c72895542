import type {
  GateRequest,
  GateResult,
  QueueBackend,
  QueueView,
  TicketRequest,
  TicketResult,
} from '../queue-types.js'
import { firstGate } from '../queues.js'
import type { StoreOp, StoreResult } from '../types.js'
import { decodeBatch, encodeBatch, QUEUES_BUSY_KEY, queueMarkerKey, StoreScriptError } from './encode.js'
import { sendBySlot } from './slot-groups.js'

interface PendingTry {
  parts: StoreOp[]
  keys: string[]
  args: (string | number)[]
  resolve: (result: GateResult) => void
  reject: (error: unknown) => void
}

/** Most tries sent in one call. */
const MAX_BATCH = 128

/** What RedisQueues needs of a RedisStore: its ops, and one call of the library's queue function. */
export interface GateCaller {
  execute(op: StoreOp): Promise<StoreResult>
  gate(keys: string[], args: (string | number)[]): Promise<unknown[]>
  /** Key names matching a glob pattern, on every master, at most `limit`. */
  scanKeys(pattern: string, limit: number): Promise<string[]>
}

/** `text` as a SCAN MATCH pattern that matches it literally. */
function globLiteral(text: string): string {
  return text.replace(/[*?[\]\\]/g, (c) => `\\${c}`)
}

/**
 * The five keys of the queue named `key` (lua/queue.lua): four under the key's own hash tag, then
 * the busy string on one Redis (`busyKey`), or the marker again on a cluster.
 */
export function queueKeys(key: string, busyKey: string | undefined): string[] {
  const marker = queueMarkerKey(key)
  return [key, `${key}:lease`, `${key}:meta`, marker, busyKey ?? marker]
}

const text = (value: unknown): string => (Buffer.isBuffer(value) ? value.toString() : String(value))

/** One try's reply (lua/queue.lua) as its result. */
function readTry(reply: unknown[], parts: StoreOp[]): GateResult {
  if (!Array.isArray(reply)) throw new StoreScriptError('Redis queue step replied without a result')
  const kind = text(reply[0])
  if (kind === 'gone') return { kind: 'gone' }
  if (kind === 'wait') return { kind: 'wait', size: Number(reply[1]) }
  if (kind === 'error') throw new StoreScriptError(`Redis queue step failed: ${text(reply[1])}`)
  if (kind !== 'ran') throw new StoreScriptError(`Redis queue step replied ${kind}`)
  const results = decodeBatch(reply.slice(1), parts)
  const failed = results.find((r) => r instanceof Error)
  if (failed !== undefined) throw failed
  const [head, ...rest] = results as Exclude<(typeof results)[number], Error>[]
  return { kind: 'ran', result: parts.length === 1 ? head! : { ...head!, linked: rest } }
}

/**
 * Fair queues in Redis (lua/queue.lua): every instance sharing the Redis shares one order per
 * capacity; a gated op runs in the same script call as the queue's verdict.
 */
export class RedisQueues implements QueueBackend {
  private pending: PendingTry[] = []
  private scheduled = false

  /** The busy string of lua/busy.lua on one Redis; undefined on a cluster. */
  private readonly busyKey: string | undefined

  constructor(
    private readonly store: GateCaller,
    private readonly cluster: boolean,
  ) {
    this.busyKey = cluster ? undefined : QUEUES_BUSY_KEY
  }

  /**
   * The first try is an ordinary op, batched with every other, guarded by the queue's key: it is
   * decided only when nobody waits (apply.lua's guarded modes).
   */
  first(op: StoreOp, key: string): Promise<GateResult> {
    return this.firstResult(op, key).then(firstGate)
  }

  firstResult(op: StoreOp, key: string): Promise<StoreResult> {
    // The op is the caller's own, made for this request: guarded in place rather than copied.
    op.guard = key
    return this.store.execute(op)
  }

  /**
   * Tries issued in the same event-loop turn share one script call per hash slot (as ops do in
   * RedisStore), each still decided alone with its queue's verdict.
   */
  gate(given: StoreOp, request: GateRequest): Promise<GateResult> {
    // A ticket holder's op is not guarded: the queue's own verdict decides whether it runs.
    const op = given.guard === undefined ? given : { ...given, guard: undefined }
    const parts = op.linked === undefined ? [op] : [op, ...op.linked]
    const joined = op.linked === undefined ? undefined : parts.map((_, i) => i < parts.length - 1)
    const batch = encodeBatch(parts, joined)
    return new Promise((resolve, reject) => {
      this.pending.push({
        parts,
        keys: [...queueKeys(request.key, this.busyKey), ...batch.keys],
        args: [request.ticket ?? '', request.leaseMs, ...batch.args],
        resolve,
        reject,
      })
      if (!this.scheduled) {
        this.scheduled = true
        setImmediate(() => this.flush())
      }
    })
  }

  private flush(): void {
    this.scheduled = false
    const pending = this.pending
    this.pending = []
    sendBySlot(pending, MAX_BATCH, this.cluster, (group) => this.send(group))
  }

  private send(group: PendingTry[]): void {
    const keys: string[] = []
    const args: (string | number)[] = ['gate', 'batch', group.length]
    for (const p of group) {
      keys.push(...p.keys)
      args.push(p.keys.length, p.args.length - 2, ...p.args)
    }
    this.store.gate(keys, args).then(
      (replies) => {
        for (let k = 0; k < group.length; k++) {
          try {
            group[k]!.resolve(readTry(replies[k] as unknown[], group[k]!.parts))
          } catch (error) {
            group[k]!.reject(error)
          }
        }
      },
      (error: unknown) => {
        for (const p of group) p.reject(error)
      },
    )
  }

  async enqueue(key: string, r: TicketRequest): Promise<TicketResult> {
    const reply = await this.store.gate(queueKeys(key, this.busyKey), [
      'gate',
      'enqueue',
      r.waiter,
      r.flow,
      r.weight,
      r.leaseMs,
      r.maxPerFlow,
      r.maxTotal,
    ])
    if (Number(reply[0]) === 1) {
      return { queued: true, ticket: text(reply[1]), size: Number(reply[2]), finish: Number(text(reply[3])) }
    }
    const reason = text(reply[1]) === 'flow-full' ? 'flow-full' : 'queue-full'
    return { queued: false, reason, size: Number(reply[2]) }
  }

  async leave(key: string, ticket: string): Promise<number> {
    const reply = await this.store.gate(queueKeys(key, this.busyKey), ['gate', 'leave', ticket])
    return Number(reply[0])
  }

  async length(key: string): Promise<number> {
    const reply = await this.store.gate(queueKeys(key, this.busyKey), ['gate', 'length'])
    return Number(reply[0])
  }

  /** The tickets sorted set of each queue (the key itself ends with `!queue`; its two others do not). */
  keys(prefix: string, limit: number): Promise<string[]> {
    return this.store.scanKeys(`${globLiteral(prefix)}*!queue`, limit)
  }

  async inspect(key: string): Promise<QueueView> {
    const reply = await this.store.gate(queueKeys(key, this.busyKey), ['gate', 'inspect'])
    const oldest = Number(reply[1])
    return { waiting: Number(reply[0]), oldestWaitMs: oldest < 0 ? undefined : oldest }
  }
}
