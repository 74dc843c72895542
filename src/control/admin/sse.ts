/**
 * The events feed as server-sent events: each reader gets what it missed since its
 * `Last-Event-ID` (or only what comes next, without one), then every event as it is published,
 * and a comment line every `keepAliveMs` so that proxies and the client see a live connection.
 * A reader too slow to take what is sent is cut (it comes back with its Last-Event-ID); the number
 * of readers is bounded; every stream ends when the server closes.
 */
import type { ServerResponse } from 'node:http'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { AdminHttpError } from './errors.js'
import type { AdminEvent, AdminEventFeed } from './events.js'

export interface EventStreamOptions {
  /** A comment line this often, in ms (default 15 s). */
  keepAliveMs?: number
  /** Readers at once (default 50); more get 503. */
  maxStreams?: number
  /** Unsent bytes a reader may fall behind by before it is cut (default 1 MiB). */
  maxBufferedBytes?: number
}

/** How long a client waits before reconnecting, told in the stream (`retry:`). */
const RETRY_MS = 2000

export class EventStreams {
  private readonly open = new Set<ServerResponse>()
  private readonly keepAliveMs: number
  private readonly maxStreams: number
  private readonly maxBuffered: number

  constructor(
    private readonly feed: AdminEventFeed,
    options: EventStreamOptions = {},
  ) {
    this.keepAliveMs = options.keepAliveMs ?? 15_000
    this.maxStreams = options.maxStreams ?? 50
    this.maxBuffered = options.maxBufferedBytes ?? 1024 * 1024
    for (const [name, value] of Object.entries({
      keepAliveMs: this.keepAliveMs,
      maxStreams: this.maxStreams,
      maxBufferedBytes: this.maxBuffered,
    })) {
      if (!Number.isSafeInteger(value) || value < 1) throw new TypeError(`${name} must be a whole number ≥ 1`)
    }
  }

  get size(): number {
    return this.open.size
  }

  /** Answers the request with the stream (the reply is taken over: Fastify sends nothing itself). */
  serve(request: FastifyRequest, reply: FastifyReply): void {
    if (this.open.size >= this.maxStreams) {
      throw new AdminHttpError(
        503,
        `too many event streams are open (${this.maxStreams}); close one or try again shortly`,
        'server_error',
        'too_many_streams',
        null,
        { 'retry-after': '5' },
      )
    }
    const header = request.headers['last-event-id']
    const lastEventId = typeof header === 'string' && header.length <= 100 ? header : undefined
    reply.hijack()
    const res = reply.raw
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      // nginx and others buffer answers unless told not to.
      'x-accel-buffering': 'no',
      // A stream's connection is not reused: once it ends (the server closing, say), the socket
      // closes too, instead of idling where a closing server would wait for it.
      connection: 'close',
    })
    if (request.method === 'HEAD') {
      res.end()
      return
    }
    this.open.add(res)
    const send = (text: string) => {
      if (res.destroyed || res.writableEnded) return
      if (res.writableLength > this.maxBuffered) {
        res.destroy()
        return
      }
      res.write(text)
    }
    // Replay and subscribe in one turn of the event loop: publish() is synchronous, so no event
    // can fall between the two, nor come twice.
    const resume = this.feed.since(lastEventId)
    send(`retry: ${RETRY_MS}\n: sluice events, stream ${this.feed.stream}\n\n`)
    if (resume.missed > 0) send(`event: gap\ndata: ${JSON.stringify({ missed: resume.missed })}\n\n`)
    for (const event of resume.events) send(frame(event))
    const unsubscribe = this.feed.subscribe((event) => send(frame(event)))
    const timer = setInterval(() => send(': keep-alive\n\n'), this.keepAliveMs)
    timer.unref()
    res.once('close', () => {
      clearInterval(timer)
      unsubscribe()
      this.open.delete(res)
    })
  }

  /** Ends every stream (the server is closing: open streams would hold its close forever). */
  closeAll(): void {
    for (const res of this.open) res.end()
    this.open.clear()
  }
}

function frame(event: AdminEvent): string {
  // JSON.stringify never writes a raw line break, so `data:` is one line.
  return `id: ${event.id}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`
}
