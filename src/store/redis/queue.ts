import type { GateRequest, GateResult, QueueBackend, TicketRequest, TicketResult } from '../queue-types.js'
import type { StoreOp } from '../types.js'
import { decodeBatch, encodeBatch, StoreScriptError } from './encode.js'

/** What RedisQueues needs of a RedisStore: one call of the library's queue function. */
export interface GateCaller {
  gate(keys: string[], args: (string | number)[]): Promise<unknown[]>
}

/** The three keys of the queue named `key` (lua/queue.lua): one hash tag, the key's own. */
export function queueKeys(key: string): string[] {
  return [key, `${key}:lease`, `${key}:meta`]
}

const text = (value: unknown): string => (Buffer.isBuffer(value) ? value.toString() : String(value))

/**
 * Fair queues in Redis (lua/queue.lua): every instance sharing the Redis shares one order per
 * capacity; a gated op runs in the same script call as the queue's verdict.
 */
export class RedisQueues implements QueueBackend {
  constructor(private readonly store: GateCaller) {}

  async gate(op: StoreOp, request: GateRequest): Promise<GateResult> {
    const ops = [op]
    const parts = op.linked === undefined ? ops : [op, ...op.linked]
    const joined = op.linked === undefined ? undefined : parts.map((_, i) => i < parts.length - 1)
    const batch = encodeBatch(parts, joined)
    const reply = await this.store.gate(
      [...queueKeys(request.key), ...batch.keys],
      ['gate', 'try', request.ticket ?? '', request.leaseMs, ...batch.args],
    )
    const kind = text(reply[0])
    if (kind === 'gone') return { kind: 'gone' }
    if (kind === 'wait') return { kind: 'wait', size: Number(reply[1]) }
    if (kind !== 'ran') throw new StoreScriptError(`Redis queue step replied ${kind}`)
    const results = decodeBatch(reply.slice(1), parts)
    const failed = results.find((r) => r instanceof Error)
    if (failed !== undefined) throw failed
    const [head, ...rest] = results as Exclude<(typeof results)[number], Error>[]
    return { kind: 'ran', result: op.linked === undefined ? head! : { ...head!, linked: rest } }
  }

  async enqueue(key: string, r: TicketRequest): Promise<TicketResult> {
    const reply = await this.store.gate(queueKeys(key), [
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
    const reply = await this.store.gate(queueKeys(key), ['gate', 'leave', ticket])
    return Number(reply[0])
  }

  async length(key: string): Promise<number> {
    const reply = await this.store.gate(queueKeys(key), ['gate', 'length'])
    return Number(reply[0])
  }
}
