/**
 * The alerts feed, live: the latest events from GET /events, then every new one from the
 * server-sent events of /events/stream — read with fetch, because a browser EventSource cannot
 * send the Authorization header, and the token never goes in a URL. After a cut it reconnects
 * with Last-Event-ID, so nothing held by the server is missed or shown twice.
 */
import { useEffect, useState } from 'preact/hooks'
import { ApiError, apiUrl, get } from './api'
import { signOut, token } from './session'
import type { AdminEvent, EventPage } from './types'

export type FeedState = 'connecting' | 'live' | 'reconnecting' | 'unavailable' | 'stopped'

interface FeedSnapshot {
  state: FeedState
  /** Newest first. */
  events: AdminEvent[]
  /** Events the server no longer held when the stream came back (shown as a notice). */
  missed: number
  /** Events that arrived since the alerts page was last looked at. */
  unseen: number
}

const KEEP = 500
let snapshot: FeedSnapshot = { state: 'stopped', events: [], missed: 0, unseen: 0 }
const listeners = new Set<(s: FeedSnapshot) => void>()
let controller: AbortController | undefined

function update(change: Partial<FeedSnapshot>): void {
  snapshot = { ...snapshot, ...change }
  for (const l of listeners) l(snapshot)
}

function add(event: AdminEvent): void {
  if (snapshot.events.some((e) => e.id === event.id)) return
  update({ events: [event, ...snapshot.events].slice(0, KEEP), unseen: snapshot.unseen + 1 })
}

export function markSeen(): void {
  if (snapshot.unseen !== 0) update({ unseen: 0 })
}

/** Starts the feed (after sign-in); stops any earlier one. */
export function startFeed(): void {
  stopFeed()
  const current = new AbortController()
  controller = current
  update({ state: 'connecting', events: [], missed: 0, unseen: 0 })
  void run(current.signal)
}

export function stopFeed(): void {
  controller?.abort()
  controller = undefined
  update({ state: 'stopped' })
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms)
    signal.addEventListener('abort', () => {
      clearTimeout(timer)
      resolve()
    })
  })

async function run(signal: AbortSignal): Promise<void> {
  let lastId: string
  try {
    const page = await get<EventPage>('events', { limit: 100 }, signal)
    update({ events: page.items })
    // Resume after the newest event listed; with none, from the stream's start.
    lastId = page.items[0]?.id ?? `${page.stream}-0`
  } catch (error) {
    if (signal.aborted) return
    if (error instanceof ApiError && error.status === 501) return update({ state: 'unavailable' })
    update({ state: 'reconnecting' })
    await sleep(5000, signal)
    if (!signal.aborted) void run(signal)
    return
  }
  let wait = 2000
  while (!signal.aborted) {
    try {
      const response = await fetch(apiUrl('events/stream'), {
        headers: {
          authorization: `Bearer ${token() ?? ''}`,
          'last-event-id': lastId,
          accept: 'text/event-stream',
        },
        signal,
        cache: 'no-store',
        credentials: 'omit',
      })
      if (response.status === 401) return signOut('The admin token was refused: sign in again.')
      if (response.status === 501) return update({ state: 'unavailable' })
      if (!response.ok || response.body === null) throw new Error(`HTTP ${response.status}`)
      update({ state: 'live' })
      wait = 2000
      for await (const frame of frames(response.body, signal)) {
        if (frame.retry !== undefined) wait = Math.min(30_000, Math.max(500, Number(frame.retry) || 2000))
        if (frame.event === 'gap')
          update({ missed: snapshot.missed + (JSON.parse(frame.data ?? '{}').missed ?? 0) })
        else if (frame.data !== undefined) {
          const event = JSON.parse(frame.data) as AdminEvent
          if (frame.id !== undefined) lastId = frame.id
          add(event)
        }
      }
    } catch {
      if (signal.aborted) return
    }
    if (signal.aborted) return
    update({ state: 'reconnecting' })
    await sleep(wait, signal)
    wait = Math.min(30_000, wait * 2)
  }
}

interface Frame {
  id?: string
  event?: string
  data?: string
  retry?: string
}

/** Server-sent events off a byte stream, as the spec splits them (blank line between events). */
async function* frames(body: ReadableStream<Uint8Array>, signal: AbortSignal): AsyncGenerator<Frame> {
  const reader = body.getReader()
  const decoder = new TextDecoder()
  let buffer = ''
  try {
    while (!signal.aborted) {
      const { done, value } = await reader.read()
      if (done) return
      buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, '\n')
      for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
        const block = buffer.slice(0, end)
        buffer = buffer.slice(end + 2)
        const frame: Frame = {}
        for (const line of block.split('\n')) {
          if (line === '' || line.startsWith(':')) continue
          const colon = line.indexOf(':')
          const field = colon < 0 ? line : line.slice(0, colon)
          const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '')
          if (field === 'data') frame.data = frame.data === undefined ? value : `${frame.data}\n${value}`
          else if (field === 'id' || field === 'event' || field === 'retry') frame[field] = value
        }
        if (frame.data !== undefined || frame.retry !== undefined || frame.event !== undefined) yield frame
      }
    }
  } finally {
    reader.releaseLock()
  }
}

export function useFeed(): FeedSnapshot {
  const [value, setValue] = useState(snapshot)
  useEffect(() => {
    listeners.add(setValue)
    setValue(snapshot)
    return () => {
      listeners.delete(setValue)
    }
  }, [])
  return value
}
