import pg from 'pg'
import {
  CHANGE_CHANNEL,
  type ChangeFeed,
  type ChangeFeedEvents,
  type ChangeListener,
  Listeners,
  parseChangePayload,
} from './changes.js'
import { withDeadline } from './deadline.js'

export interface NotifyFeedOptions extends ChangeFeedEvents {
  /** Longest wait for connecting, LISTEN or a health check (default 5 s). */
  deadlineMs?: number
  /** How often the idle listening connection is checked with `SELECT 1` (default 5 s). */
  healthIntervalMs?: number
  /** Reconnection backoff: from `minMs`, doubling up to `maxMs` (default 100 ms … 5 s), with jitter. */
  backoff?: { minMs?: number; maxMs?: number }
  onError?: (error: unknown) => void
}

/** Marks the listening connection in pg_stat_activity (and lets tests find and cut it). */
export const LISTENER_APPLICATION_NAME = 'sluice-changes'

/**
 * PostgreSQL's change feed: one dedicated connection LISTENing on `sluice_changes`; each committed
 * admin change arrives as a notification `kind:id`. Notifications sent while the connection is
 * down are lost, so every time LISTEN takes effect (the first time included) the feed says
 * `{ kind: 'all' }`: whatever was read before that moment may be stale. A connection that dies
 * or stops answering the health check within its deadline is replaced, with backoff.
 */
export class NotifyChangeFeed implements ChangeFeed {
  private readonly listeners: Listeners
  private client: pg.Client | undefined
  private current: ChangeFeed['state'] = 'idle'
  private started = false
  private firstListen: { promise: Promise<void>; resolve: () => void }
  private reconnectTimer: NodeJS.Timeout | undefined
  private healthTimer: NodeJS.Timeout | undefined
  private attempt = 0
  private readonly deadlineMs: number

  constructor(
    private readonly config: pg.ClientConfig,
    private readonly options: NotifyFeedOptions = {},
  ) {
    this.deadlineMs = options.deadlineMs ?? 5000
    this.listeners = new Listeners((e) => options.onError?.(e))
    let resolve!: () => void
    const promise = new Promise<void>((r) => {
      resolve = r
    })
    this.firstListen = { promise, resolve }
  }

  get state(): ChangeFeed['state'] {
    return this.current
  }

  subscribe(listener: ChangeListener): () => void {
    const off = this.listeners.add(listener)
    this.start()
    return off
  }

  ready(): Promise<void> {
    if (this.current === 'closed') return Promise.reject(new Error('the change feed is closed'))
    this.start()
    return this.firstListen.promise
  }

  private start(): void {
    if (this.started || this.current === 'closed') return
    this.started = true
    void this.connect()
  }

  private async connect(): Promise<void> {
    if (this.current === 'closed') return
    const client = new pg.Client({
      ...this.config,
      application_name: LISTENER_APPLICATION_NAME,
      connectionTimeoutMillis: this.deadlineMs,
      query_timeout: this.deadlineMs,
      keepAlive: true,
    })
    this.client = client
    client.on('error', (error) => this.lost(client, error))
    client.on('end', () => this.lost(client, new Error('the listening connection ended')))
    client.on('notification', (message) => {
      if (message.channel !== CHANGE_CHANNEL || this.client !== client) return
      const event = parseChangePayload(message.payload)
      // A payload this version cannot read (a newer writer?): everything may have changed.
      this.listeners.emit(event ?? { kind: 'all' })
    })
    try {
      await withDeadline(client.connect(), this.deadlineMs, 'connecting')
      await withDeadline(client.query(`LISTEN ${CHANGE_CHANNEL}`), this.deadlineMs, 'LISTEN')
    } catch (error) {
      this.lost(client, error)
      return
    }
    if (this.client !== client || this.state === 'closed') return
    this.attempt = 0
    this.transition('up')
    this.listeners.emit({ kind: 'all' })
    this.firstListen.resolve()
    this.scheduleHealthCheck(client)
  }

  private scheduleHealthCheck(client: pg.Client): void {
    this.healthTimer = setTimeout(async () => {
      if (this.client !== client) return
      try {
        await withDeadline(client.query('SELECT 1'), this.deadlineMs, 'the health check')
        this.scheduleHealthCheck(client)
      } catch (error) {
        this.lost(client, error)
      }
    }, this.options.healthIntervalMs ?? 5000)
    this.healthTimer.unref()
  }

  /** Drops a connection that failed (once) and schedules the next one. */
  private lost(client: pg.Client, error: unknown): void {
    if (this.client !== client) return
    this.client = undefined
    clearTimeout(this.healthTimer)
    client.removeAllListeners('notification')
    client.on('error', () => {}) // late errors of an abandoned connection are expected
    // Not awaited: end() on a dead peer can wait for the socket; the next connection does not need it.
    client.end().catch(() => {})
    if (this.current === 'closed') return
    this.transition('down', error)
    const min = this.options.backoff?.minMs ?? 100
    const max = this.options.backoff?.maxMs ?? 5000
    const delay = Math.min(max, min * 2 ** this.attempt) * (0.5 + Math.random() / 2)
    this.attempt = Math.min(this.attempt + 1, 20)
    this.reconnectTimer = setTimeout(() => void this.connect(), delay)
    this.reconnectTimer.unref()
  }

  private transition(to: 'up' | 'down', error?: unknown): void {
    if (this.current === to || this.current === 'closed') return
    const first = this.current === 'idle' && to === 'up'
    this.current = to
    if (!first) this.options.onStateChange?.(to, error)
  }

  async close(): Promise<void> {
    this.current = 'closed'
    clearTimeout(this.reconnectTimer)
    clearTimeout(this.healthTimer)
    const client = this.client
    this.client = undefined
    if (client) {
      client.on('error', () => {})
      await withDeadline(client.end(), this.deadlineMs, 'closing').catch(() => {})
    }
    this.firstListen.resolve()
  }
}
