/**
 * The admin events feed: alerts, blocks, budget exhaustion, store outages and webhook deliveries,
 * as they happen, in a bounded in-process ring buffer. Whatever produces them (the gateway's
 * Sluice `events`, its store guard, its webhook) publishes here (see event-sources.ts); the admin
 * API serves the buffer as a paged list and as server-sent events (routes/events.ts).
 */
import { randomBytes } from 'node:crypto'
import { ControlInputError } from '../errors.js'

export const ADMIN_EVENT_TYPES = ['alert', 'block', 'budget', 'store', 'webhook', 'detection'] as const
export type AdminEventType = (typeof ADMIN_EVENT_TYPES)[number]
export const ADMIN_EVENT_SEVERITIES = ['info', 'warning', 'critical'] as const
export type AdminEventSeverity = (typeof ADMIN_EVENT_SEVERITIES)[number]

/** What a producer publishes. */
export interface AdminEventInput {
  type: AdminEventType
  /** One sentence for people: `key:ab12cd34ef used 82% of "tokens"`. */
  message: string
  /** The subject it is about (`key:<id>`, `user:<id>`, `ip:<address>`), if any. */
  subject?: string | null
  tier?: string | null
  /** Default: `warning`. */
  severity?: AdminEventSeverity
  /** Details as JSON (a limit, a share, a state, a delivery's outcome…), at most 4 KB. */
  data?: Record<string, unknown>
  /** Epoch ms (default: the feed's clock). */
  time?: number
}

/** An event as the admin API serves it. */
export interface AdminEvent {
  /** `<stream>-<seq>`: unique in this process's feed, increasing; what `Last-Event-ID` resumes from. */
  id: string
  time: string
  type: AdminEventType
  severity: AdminEventSeverity
  subject: string | null
  tier: string | null
  message: string
  data: Record<string, unknown>
}

export interface AdminEventQuery {
  type?: AdminEventType
  subject?: string
  /** Newest first; 1..1000 a page (default 100). */
  limit?: number
  /** The `next` of the previous page. */
  cursor?: string
}

export interface AdminEventPage {
  items: AdminEvent[]
  next?: string
}

/** Where a reader stands after `since(lastEventId)`. */
export interface Resume {
  events: AdminEvent[]
  /** Events the reader missed because the buffer no longer holds them (0: none lost). */
  missed: number
}

export interface AdminEventFeedOptions {
  /** Events kept (default 1,000); the oldest go first. */
  capacity?: number
  /** Epoch ms (default Date.now). */
  clock?: () => number
}

const MAX_MESSAGE = 500
const MAX_TEXT = 300
const MAX_DATA_BYTES = 4096
const MAX_CAPACITY = 100_000
// biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point.
const CONTROL = /[\u0000-\u001f\u007f]/

interface Stored {
  seq: number
  event: AdminEvent
}

type Listener = (event: AdminEvent) => void

/**
 * A ring buffer of the latest events with subscribers. `publish` is synchronous and O(1) (plus the
 * listeners): producers call it from the request path. Ids carry a random stream name chosen at
 * start, so that a reader coming back after a restart is not mistaken for one that is up to date.
 */
export class AdminEventFeed {
  /** The name of this process's stream (the part of every id before the dash). */
  readonly stream = randomBytes(6).toString('base64url').replace(/[-_]/g, 'x')
  readonly capacity: number
  private readonly clock: () => number
  private readonly ring: (Stored | undefined)[]
  private seq = 0
  private readonly listeners = new Set<Listener>()

  constructor(options: AdminEventFeedOptions = {}) {
    const capacity = options.capacity ?? 1000
    if (!Number.isSafeInteger(capacity) || capacity < 1 || capacity > MAX_CAPACITY) {
      throw new ControlInputError('capacity', `must be a whole number from 1 to ${MAX_CAPACITY}`, capacity)
    }
    this.capacity = capacity
    this.clock = options.clock ?? Date.now
    this.ring = new Array(capacity)
  }

  /** Events published so far (including those the buffer no longer holds). */
  get published(): number {
    return this.seq
  }

  /** Adds an event; throws a ControlInputError naming the field of a malformed one. */
  publish(input: AdminEventInput): AdminEvent {
    const event = this.checked(input)
    const seq = ++this.seq
    const stored = { seq, event: { ...event, id: `${this.stream}-${seq}` } }
    this.ring[seq % this.capacity] = stored
    for (const listener of this.listeners) {
      try {
        listener(stored.event)
      } catch {
        // A reader's failure (a closed socket) must not reach the producer, nor the other readers.
      }
    }
    return stored.event
  }

  /** Calls `listener` with every event published from now on; returns the unsubscribe function. */
  subscribe(listener: Listener): () => void {
    this.listeners.add(listener)
    return () => {
      this.listeners.delete(listener)
    }
  }

  get subscribers(): number {
    return this.listeners.size
  }

  /** Newest first, filtered, by pages. */
  list(query: AdminEventQuery = {}): AdminEventPage {
    const limit = query.limit ?? 100
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > 1000) {
      throw new ControlInputError('limit', 'must be a whole number from 1 to 1000', limit)
    }
    let before = this.seq + 1
    if (query.cursor !== undefined) {
      const n = /^\d{1,15}$/.test(query.cursor) ? Number(query.cursor) : Number.NaN
      if (!Number.isSafeInteger(n) || n < 1)
        throw new ControlInputError('cursor', 'is not a cursor of this feed')
      before = Math.min(n, before)
    }
    const items: AdminEvent[] = []
    let seq = before - 1
    for (; seq > this.oldestSeq() - 1 && items.length < limit; seq--) {
      const event = this.ring[seq % this.capacity]!.event
      if (query.type !== undefined && event.type !== query.type) continue
      if (query.subject !== undefined && event.subject !== query.subject) continue
      items.push(event)
    }
    // `seq` is the next one to look at: more when it is still within the buffer.
    return seq >= this.oldestSeq() && items.length === limit ? { items, next: String(seq + 1) } : { items }
  }

  /**
   * What a reader that last saw `lastEventId` has missed, oldest first. No id: nothing (the reader
   * takes what comes next; one that has listed the feed first passes the newest id it got, or
   * `<stream>-0` for an empty list). An id of another stream (this process restarted since):
   * everything held. An id older than the buffer: what is held, and how many were lost between.
   */
  since(lastEventId: string | undefined): Resume {
    if (lastEventId === undefined) return { events: [], missed: 0 }
    const oldest = this.oldestSeq()
    let after = 0
    const match = /^([A-Za-z0-9]+)-(\d{1,15})$/.exec(lastEventId)
    if (match !== null && match[1] === this.stream) after = Math.min(Number(match[2]), this.seq)
    const start = Math.max(after + 1, oldest)
    const events: AdminEvent[] = []
    for (let seq = start; seq <= this.seq; seq++) events.push(this.ring[seq % this.capacity]!.event)
    return { events, missed: Math.max(0, oldest - after - 1) }
  }

  /** The seq of the oldest event held (seq + 1 when empty). */
  private oldestSeq(): number {
    return Math.max(1, this.seq - this.capacity + 1)
  }

  private checked(input: AdminEventInput): Omit<AdminEvent, 'id'> {
    if (typeof input !== 'object' || input === null) throw new ControlInputError('event', 'must be an object')
    if (!ADMIN_EVENT_TYPES.includes(input.type)) {
      throw new ControlInputError('type', `must be one of ${ADMIN_EVENT_TYPES.join(', ')}`, input.type)
    }
    const severity = input.severity ?? 'warning'
    if (!ADMIN_EVENT_SEVERITIES.includes(severity)) {
      throw new ControlInputError('severity', `must be one of ${ADMIN_EVENT_SEVERITIES.join(', ')}`, severity)
    }
    const time = input.time ?? this.clock()
    if (!Number.isSafeInteger(time) || time < 0)
      throw new ControlInputError('time', 'must be epoch milliseconds', time)
    let data: Record<string, unknown> = {}
    if (input.data !== undefined) {
      if (typeof input.data !== 'object' || input.data === null || Array.isArray(input.data)) {
        throw new ControlInputError('data', 'must be a JSON object')
      }
      let text: string
      try {
        text = JSON.stringify(input.data)
      } catch {
        throw new ControlInputError('data', 'must be serialisable as JSON')
      }
      if (Buffer.byteLength(text) > MAX_DATA_BYTES) {
        throw new ControlInputError('data', `must be at most ${MAX_DATA_BYTES} bytes of JSON`)
      }
      // A copy of what was sent: later changes to the producer's object do not alter history.
      data = JSON.parse(text) as Record<string, unknown>
    }
    return {
      time: new Date(time).toISOString(),
      type: input.type,
      severity,
      subject: optionalText(input.subject, 'subject'),
      tier: optionalText(input.tier, 'tier'),
      message: text(input.message, 'message', MAX_MESSAGE),
      data,
    }
  }
}

function text(value: unknown, field: string, max: number): string {
  if (typeof value !== 'string' || value === '')
    throw new ControlInputError(field, 'must be a non-empty string')
  // Cut, not refused: a subject or a model name inside a message comes from clients.
  const cut = value.length > max ? `${value.slice(0, max - 1)}…` : value
  return CONTROL.test(cut) ? cut.replace(new RegExp(CONTROL.source, 'g'), '\uFFFD') : cut
}

function optionalText(value: unknown, field: string): string | null {
  return value === undefined || value === null ? null : text(value, field, MAX_TEXT)
}
