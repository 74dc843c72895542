import type { FastifyReply } from 'fastify'
import type { AdmitOptions } from '../../http/index.js'

/**
 * A signal that aborts when the client goes away before its answer is sent: a request waiting in
 * a queue (docs/queueing.md) then gives its place back at once instead of at its lease's end.
 */
export function clientGone(reply: FastifyReply): AbortSignal {
  const controller = new AbortController()
  const raw = reply.raw
  const gone = () => {
    if (!raw.writableFinished) controller.abort(new Error('the client closed the connection'))
  }
  // Made after the client left: 'close' has fired already.
  if (raw.destroyed) gone()
  else raw.once('close', gone)
  return controller.signal
}

/**
 * A call's admit options, its client-gone signal made on first read: only a tier with a queue reads
 * it, so the others pay for no AbortController and no 'close' listener per call.
 */
export function admitOptions(
  reply: FastifyReply,
  escalate: AdmitOptions['escalate'] | undefined,
  priority: AdmitOptions['priority'],
): AdmitOptions {
  let signal: AbortSignal | undefined
  const options: AdmitOptions = {
    get signal() {
      signal ??= clientGone(reply)
      return signal
    },
  }
  if (escalate !== undefined) options.escalate = escalate
  if (priority !== undefined) options.priority = priority
  return options
}
