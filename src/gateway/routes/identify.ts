/**
 * The hook in front of every /v1 route, before the body is read: who the caller is (the HTTP
 * layer's identify), a key when the config requires one, a subject already sure to be denied
 * (refused before its body), and at most `uploads.perIp` bodies arriving at once per address.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Admission, Identification } from '../../http/index.js'
import { remoteAddressOf } from '../../http/socket-address.js'
import { waitable } from '../../waiting.js'
import { CHEAPEST_CALL, knownDenied } from '../admission.js'
import { traceOf } from '../trace.js'
import { admissionHeaders, closeIfUploading, type Gate } from './context.js'

/** onRequest of /v1: identifies the request, or answers it (401, 403, 429) before its body. */
export async function identifyCaller(
  gate: Gate,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<void> {
  const id = await gate.sluice.identify({
    method: request.method,
    url: request.url,
    headers: request.headers,
    remoteAddress: remoteAddressOf(request.raw.socket),
  })
  traceOf(request).identification = id
  if (id.refusal) {
    const headers = closeIfUploading(request, { ...id.refusal.headers })
    await reply.code(id.refusal.status).headers(headers).send(id.refusal.body)
    return
  }
  if (gate.config.auth.requireKey && id.identity?.kind !== 'key') {
    await reply
      .code(401)
      .headers(closeIfUploading(request, { 'www-authenticate': 'Bearer' }))
      .send({
        error: {
          message:
            'You did not provide an API key. Send it as "Authorization: Bearer sk-sluice-…" or in the X-API-Key header.',
          type: 'invalid_request_error',
          param: null,
          code: 'missing_api_key',
        },
      })
    return
  }
  gate.identities.set(request, id)
  if (request.method === 'POST') await admitBody(gate, request, reply, id)
}

/**
 * The refusal a subject is already sure to get (blocked, out of requests), known without a store
 * round trip (admission.ts); then decided for real, answered from memory, so it counts as a strike.
 */
export async function knownRefusal(gate: Gate, id: Identification): Promise<Admission | undefined> {
  const { sluice } = gate
  const identity = id.identity
  if (identity === undefined || id.allowListed || sluice.isShadow(identity.tier)) return undefined
  const limiter = sluice.limiterFor(identity)
  if (!(await knownDenied(limiter, identity.subject))) return undefined
  const reservation = await limiter.reserve(identity.subject, CHEAPEST_CALL)
  if (reservation.allowed) {
    await reservation.cancel()
    return undefined
  }
  // A tier with a queue waits on a rate limit instead (docs/queueing.md): its admission decides.
  const d = reservation.decision
  if (sluice.waits(identity) && waitable(d, d.limits)) return undefined
  return sluice.decide(identity, reservation)
}

/** Sends a refusal of the admission step (429, 503). */
export async function sendAdmission(
  request: FastifyRequest,
  reply: FastifyReply,
  admission: Admission,
): Promise<void> {
  traceOf(request).decision = admission.state.decision
  const headers = closeIfUploading(request, admissionHeaders(admission))
  await reply.code(admission.status).headers(headers).send(admission.body)
}

/**
 * Before a body is read: a subject already sure to be denied is refused, and an address may send
 * only `uploads.perIp` bodies at once; a body that keeps arriving is then watched until it is in
 * (uploads.ts).
 */
async function admitBody(gate: Gate, request: FastifyRequest, reply: FastifyReply, id: Identification) {
  const identity = id.identity
  if (identity === undefined) return
  const refusal = await knownRefusal(gate, id)
  if (refusal !== undefined) return sendAdmission(request, reply, refusal)
  if (request.raw.complete || id.allowListed) return
  const address = identity.ipGroup ?? request.raw.socket.remoteAddress ?? 'unknown'
  const { uploads } = gate
  if (!uploads.admit(request.raw, address)) {
    await reply
      .code(429)
      .headers({ connection: 'close', 'retry-after': '1', 'retry-after-ms': '1000' })
      .send({
        error: {
          message: `Too many request bodies are being sent from your address at once (the limit is ${uploads.limits.perIp}). Please wait for one to finish.`,
          type: 'requests',
          param: null,
          code: 'too_many_uploads',
        },
      })
  }
}
