/** How the mock upstream writes its answers, and fails them on request (x-mock-fail). */
import { once } from 'node:events'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { sharedCounter } from '../counting.js'
import type { Encoder, PromptParts } from '../tokens.js'

/** What happened to one request the mock received: the ground truth accounting tests compare against. */
export interface MockRecord {
  route: string
  model: string
  stream: boolean
  promptTokens: number
  /** Output tokens the mock sent (all of them, or up to the failure or the client's disconnect). */
  completionTokens: number
  /** Of the prompt: read from / written to the mock's prompt cache (Anthropic's cache_control). */
  cachedTokens?: number
  cacheWriteTokens?: number
  cacheWrite1hTokens?: number
  /** Whether `usage` reached the wire (final JSON or usage chunk / response.completed). */
  usageSent: boolean
  /** rate_limited: refused with a 429 by the mock's own account limits (MockUpstreamOptions.rateLimits). */
  outcome: 'ok' | 'error' | 'timeout' | 'cut' | 'stalled' | 'aborted' | 'rate_limited'
}

/**
 * Per-request failure, asked for with the `x-mock-fail` header:
 * `500` → HTTP 500; `timeout` → never answers; `overloaded` → the provider is overloaded (OpenAI:
 * 503; Anthropic: 529, or on a stream an `error` event after `message_start`); `cut:N` → sends N output tokens, then drops the
 * connection; `stall:N` → sends N output tokens, then waits silently until the caller goes away.
 */
export type Failure =
  | { kind: 'none' }
  | { kind: '500' }
  | { kind: 'timeout' }
  | { kind: 'overloaded' }
  | { kind: 'cut' | 'stall'; after: number }

export function parseFailure(header: string | string[] | undefined): Failure | string {
  const value = Array.isArray(header) ? header[0] : header
  if (value === undefined || value === '') return { kind: 'none' }
  if (value === '500') return { kind: '500' }
  if (value === 'timeout') return { kind: 'timeout' }
  if (value === 'overloaded') return { kind: 'overloaded' }
  const m = /^(cut|stall):(\d+)$/.exec(value)
  if (m) return { kind: m[1] as 'cut' | 'stall', after: Number(m[2]) }
  return `x-mock-fail must be 500, timeout, overloaded, cut:N or stall:N, got "${value}"`
}

/** One request being answered. */
export interface Call {
  req: IncomingMessage
  res: ServerResponse
  body: Record<string, unknown>
  model: string
  enc: Encoder
  record: MockRecord
  failure: Failure
  closed: () => boolean
  /** Resolves when the last write reached the socket. */
  flushed: Promise<void>
  /** Hash of what the answer derives from (server.ts: digestOf). */
  digest?: string
}

/** Writes a chunk, waiting out backpressure; false (and outcome "aborted") once the caller is gone. */
export async function write(call: Call, chunk: string): Promise<boolean> {
  if (call.closed()) {
    call.record.outcome = 'aborted'
    return false
  }
  let ok = true
  call.flushed = new Promise<void>((resolve) => {
    ok = call.res.write(chunk, () => resolve())
  })
  if (!ok) {
    await Promise.race([once(call.res, 'drain'), once(call.res, 'close')])
  }
  if (call.closed()) {
    call.record.outcome = 'aborted'
    return false
  }
  return true
}

/** Drops the connection after what was written reached the wire (a real mid-answer failure). */
export async function cut(call: Call): Promise<void> {
  await Promise.race([call.flushed, once(call.res, 'close')])
  call.res.destroy()
}

export async function waitForClose(call: Call): Promise<void> {
  if (!call.closed()) await once(call.res, 'close')
}

/** Streams SSE events for each output piece; handles the failure modes; returns false if cut short. */
export async function streamPieces(
  call: Call,
  pieces: string[],
  event: (piece: string, index: number) => string,
  pause: (tokens: number) => Promise<unknown> | undefined,
): Promise<boolean> {
  const { failure, record } = call
  for (let i = 0; i < pieces.length; i++) {
    if ((failure.kind === 'cut' || failure.kind === 'stall') && i >= failure.after) {
      record.outcome = failure.kind === 'cut' ? 'cut' : 'stalled'
      if (failure.kind === 'cut') await cut(call)
      else await waitForClose(call)
      return false
    }
    await pause(1)
    if (!(await write(call, event(pieces[i]!, i)))) return false
    record.completionTokens += call.enc.count(pieces[i]!)
  }
  if ((failure.kind === 'cut' || failure.kind === 'stall') && failure.after >= pieces.length) {
    // Asked to fail after more tokens than the answer has: fail before the end of the stream.
    record.outcome = failure.kind === 'cut' ? 'cut' : 'stalled'
    if (failure.kind === 'cut') await cut(call)
    else await waitForClose(call)
    return false
  }
  return true
}

/** The headers of an SSE answer; `sequence` numbers the mock's calls (x-request-id). */
export function sseHeaders(res: ServerResponse, sequence: number) {
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    'x-request-id': `req_mock_${sequence}`,
  })
}

/** Sends a JSON answer, or fails it halfway (cut, stall) as the call asked. */
export async function sendJson(call: Call, payload: unknown, sequence: number): Promise<void> {
  const text = JSON.stringify(payload)
  if (call.failure.kind === 'cut') {
    // A non-streamed answer cut halfway: headers and part of the body, then the connection drops.
    call.res.writeHead(200, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(text),
    })
    await write(call, text.slice(0, Math.floor(text.length / 2)))
    call.record.outcome = 'cut'
    call.record.completionTokens = 0
    await cut(call)
    return
  }
  if (call.failure.kind === 'stall') {
    call.res.writeHead(200, { 'content-type': 'application/json' })
    call.res.write(text.slice(0, Math.floor(text.length / 2)))
    call.record.outcome = 'stalled'
    call.record.completionTokens = 0
    await waitForClose(call)
    return
  }
  if (call.closed()) {
    call.record.outcome = 'aborted'
    call.record.completionTokens = 0
    return
  }
  call.record.usageSent = true
  call.res.writeHead(200, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'x-request-id': `req_mock_${sequence}`,
  })
  call.res.end(text)
}

/** Ends an SSE stream: the usage chunk when the client asked for one, then [DONE]. */
export async function endStream(call: Call, usageChunk: object | undefined): Promise<void> {
  if (usageChunk !== undefined) {
    if (!(await write(call, `data: ${JSON.stringify(usageChunk)}\n\n`))) return
    call.record.usageSent = true
  }
  call.res.end('data: [DONE]\n\n')
}

/**
 * The mock runs in the gateway's process: it counts prompts as the gateway does, in bounded time
 * and off the event loop when they are large (the upper bound when too large to count).
 */
export async function countPrompt(enc: Encoder, parts: PromptParts): Promise<number> {
  return (await sharedCounter().count(enc.encoding, parts)).tokens
}
