import { once } from 'node:events'
import type { FastifyBaseLogger, FastifyReply } from 'fastify'
import type { CallEnd, Charge } from './accounting.js'
import type { Dialect, ValidRequest } from './dialects/types.js'
import { SseSplitter } from './sse.js'
import { CallAbort, responseHead, type Upstream, type UpstreamError } from './upstream.js'

/** Where a call is sent: an upstream and the body it gets. */
export interface UpstreamTarget {
  upstream: Upstream
  body: string | undefined
}

/** An upstream's answer as far as its status and headers (or its failure to answer at all). */
export interface UpstreamAnswer {
  status: number
  headers: Record<string, string | string[] | undefined> | undefined
  failure: UpstreamError | undefined
}

export interface ProxyCall {
  reply: FastifyReply
  log: FastifyBaseLogger
  upstream: Upstream
  /** The API the call speaks: where its usage is, how its errors look. */
  dialect: Dialect
  request: ValidRequest
  method: 'GET' | 'POST'
  /** Path after the upstream's base URL. */
  path: string
  /** The JSON body to send (already rewritten, e.g. with stream_options). */
  body: string | undefined
  stream: boolean
  /** The gateway asked for the usage chunk itself: hide it from the client. */
  stripUsage: boolean
  /** Client headers (x-mock-* reach a mock upstream). */
  clientHeaders: Record<string, string | string[] | undefined>
  /** Rate-limit headers for the response. */
  headers: Record<string, string>
  charge: Charge
  /**
   * Told of every upstream answer before any of it reaches the client (its status and headers, or
   * its failure); a target it resolves to is where the call is sent instead, this answer dropped
   * (a fallback). Never asked once a byte went to the client.
   */
  onAnswer?: (answer: UpstreamAnswer) => Promise<UpstreamTarget | undefined>
}

/** Answers with a JSON body of the gateway's own on a response whose headers have not gone out. */
function writeJson(
  raw: FastifyReply['raw'],
  status: number,
  headers: Record<string, string>,
  body: unknown,
): void {
  const text = JSON.stringify(body)
  raw.writeHead(status, {
    ...headers,
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(text)),
  })
  raw.end(text)
}

function isEventStream(contentType: string | string[] | undefined): boolean {
  const value = Array.isArray(contentType) ? contentType[0] : contentType
  return value?.toLowerCase().startsWith('text/event-stream') === true
}

/**
 * Forwards one call upstream and the answer back — a stream chunk by chunk (never buffered), a
 * JSON answer whole — and settles its charge exactly once, before the response ends, so a client
 * that saw the end of one call sees its real cost in the next call's headers.
 */
export async function proxyCall(call: ProxyCall): Promise<void> {
  const { reply, charge, dialect } = call
  let upstream = call.upstream
  let body = call.body
  dialect.decorateHeaders?.(call.headers, Date.now(), charge.decision)
  const raw = reply.raw
  const controller = new CallAbort()
  let clientGone = false
  const onClose = () => {
    if (!raw.writableFinished) {
      clientGone = true
      controller.abort()
    }
  }
  raw.on('close', onClose)
  // Cut while it waited for its reservation (shutdown): 'close' has fired already.
  if (raw.destroyed) onClose()

  let response: Awaited<ReturnType<Upstream['request']>> | undefined
  let failure: UpstreamError | undefined
  for (;;) {
    failure = undefined
    try {
      response = await upstream.request({
        method: call.method,
        path: call.path,
        body,
        stream: call.stream,
        signal: controller,
        dialect,
        clientHeaders: call.clientHeaders,
      })
    } catch (error) {
      if (clientGone) {
        await charge.finish({ kind: 'aborted', status: 499, text: '' })
        return
      }
      failure = upstream.failure(error)
      call.log.warn({ upstream: upstream.name, code: failure.code }, failure.message)
    }
    if (call.onAnswer === undefined || clientGone) break
    const answer: UpstreamAnswer = {
      status: response?.statusCode ?? failure!.status,
      headers: response?.headers,
      failure,
    }
    const next = await call.onAnswer(answer)
    if (next === undefined) break
    // Dropped: the call goes to the next target; what this one sent is read and thrown away.
    if (failure === undefined) await response!.body.dump().catch(() => {})
    response = undefined
    upstream = next.upstream
    body = next.body
  }
  if (clientGone && response === undefined && failure === undefined) {
    await charge.finish({ kind: 'aborted', status: 499, text: '' })
    return
  }
  if (failure !== undefined || response === undefined) {
    failure ??= upstream.failure(new Error('no answer'))
    await charge.finish({ kind: 'failed', status: failure.status, text: '', outcome: 'upstream_error' })
    await reply
      .code(failure.status)
      .headers(call.headers)
      .send(
        dialect.errorBody({
          status: failure.status,
          message: failure.message,
          type: 'upstream_error',
          param: null,
          code: failure.code,
        }),
      )
    return
  }

  const status = response.statusCode
  const streaming = status < 400 && isEventStream(response.headers['content-type'])
  reply.hijack()
  // The response's head as one flat list (an object of its ~15 names is a dictionary to V8).
  const head: (string | string[])[] = []
  const asciiHead = responseHead(response.headers, call.headers, head)
  // A stream goes out as it comes; a JSON answer is read whole anyway (for its usage), so it goes
  // out in one write with its length once settled, instead of as chunks plus a terminator.
  if (streaming) {
    raw.writeHead(status, head)
    raw.flushHeaders()
  }

  const tracker = streaming ? dialect.streamTracker(call.request, call.stripUsage) : undefined
  const splitter = streaming ? new SseSplitter() : undefined
  if (tracker) charge.progress = tracker
  let answerBody: Buffer | undefined
  /** A JSON answer's text, as decoded for its usage. */
  let answerText: string | undefined
  let broken: unknown
  try {
    if (tracker && splitter) {
      // Made for streams only: a JSON answer goes out in one write below.
      const write = async (data: string | Buffer): Promise<void> => {
        if (clientGone || data.length === 0) return
        if (!raw.write(data)) await Promise.race([once(raw, 'drain'), once(raw, 'close')])
      }
      for await (const chunk of response.body) {
        let out = ''
        for (const event of splitter.push(chunk as Buffer)) {
          const forward = tracker.onEvent(event)
          if (forward !== '') out += `${forward}\n\n`
        }
        await write(out)
      }
      let out = ''
      for (const event of splitter.end()) {
        const forward = tracker.onEvent(event)
        if (forward !== '') out += `${forward}\n\n`
      }
      await write(out)
    } else {
      // Read whole by undici (an async iterator per answer showed in the per-call profile).
      answerBody = Buffer.from(await response.body.arrayBuffer())
    }
  } catch (error) {
    broken = error
  }

  let end: CallEnd
  if (clientGone) {
    end = { kind: 'aborted', status, usage: tracker?.usage, text: tracker?.text ?? '' }
  } else if (broken !== undefined) {
    const failure = upstream.failure(broken)
    call.log.warn(
      { upstream: upstream.name, code: failure.code },
      `upstream answer broke off: ${failure.message}`,
    )
    // A stream's status went out with its first event; a JSON answer's had not: it gets 502 (504).
    end = streaming
      ? { kind: 'failed', status, usage: tracker?.usage, text: tracker?.text ?? '', outcome: 'cut' }
      : { kind: 'failed', status: failure.status, text: '', outcome: 'cut' }
  } else if (status >= 400) {
    end = { kind: 'failed', status, text: '', outcome: 'upstream_error' }
  } else if (tracker?.failed) {
    // The stream ended on an error event (e.g. Anthropic's overloaded_error): charged what it reported.
    end = { kind: 'failed', status, usage: tracker.usage, text: tracker.text, outcome: 'upstream_error' }
  } else if (tracker) {
    end = { kind: 'answered', status, usage: tracker.usage, text: tracker.text }
  } else {
    let json: unknown
    answerText = answerBody!.toString('utf8')
    try {
      json = JSON.parse(answerText)
    } catch {
      json = undefined
    }
    const usage = json === undefined ? undefined : dialect.usageOf(json)
    // The text is counted only when the upstream reports no usage.
    end = { kind: 'answered', status, usage, text: usage === undefined ? dialect.textOf(json) : '' }
  }
  try {
    await charge.finish(end)
  } finally {
    raw.off('close', onClose)
    if (end.kind === 'failed' && end.outcome === 'cut' && streaming) raw.destroy()
    else if (end.kind === 'failed' && end.outcome === 'cut') {
      const timedOut = end.status === 504
      writeJson(
        raw,
        end.status,
        call.headers,
        dialect.errorBody({
          status: end.status,
          message: timedOut
            ? `The upstream "${upstream.name}" stopped sending its answer (timeout).`
            : `The upstream "${upstream.name}" dropped the connection before its answer was complete.`,
          type: 'upstream_error',
          param: null,
          code: timedOut ? 'upstream_timeout' : 'upstream_cut',
        }),
      )
    } else if (!clientGone) {
      if (answerBody === undefined) raw.end()
      else {
        head.push('content-length', String(answerBody.length))
        raw.writeHead(status, head)
        // Node sends a string body in one write with the head (both as UTF-8), a Buffer as a
        // second chunk after the head (as latin1). The text goes only where that gives the very
        // same bytes: an ASCII head, and an answer that was valid UTF-8 (it decodes without
        // U+FFFD; one that holds U+FFFD, or bytes that are not UTF-8, goes as received).
        if (asciiHead && answerText !== undefined && !answerText.includes('\uFFFD')) raw.end(answerText)
        else raw.end(answerBody)
      }
    }
  }
}
