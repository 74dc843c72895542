/**
 * What the gateway answers when a handler throws: its own errors (bad input, upstream trouble)
 * with the rate-limit headers of a peek, a body refused before parsing, the HTTP layer's 503 when
 * the store cannot decide (the same answer as the middleware's), else a 500.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import { StoreUnavailableError } from '../../store/errors.js'
import { RefusedBeforeParsing } from '../admission.js'
import { GatewayError } from '../errors.js'
import { bodyError } from '../json-body.js'
import { closeIfUploading, type Gate } from './context.js'
import { sendAdmission } from './identify.js'

export async function handleError(
  gate: Gate,
  error: Error & { code?: string; statusCode?: number },
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<void> {
  if (error instanceof GatewayError) return sendError(gate, request, reply, error)
  if (error instanceof RefusedBeforeParsing) return sendAdmission(request, reply, error.admission)
  const mapped = bodyError(error, gate.config.bodyLimit)
  if (mapped) return sendError(gate, request, reply, mapped)
  if (error instanceof StoreUnavailableError) {
    // The outage policy is "closed": no decision could be made, so nothing was let through.
    // Not logged per request: the store logs each transition, and the metric counts the 503s.
    const identity = gate.identities.get(request)?.identity
    return sendAdmission(request, reply, gate.sluice.unavailable(error, identity))
  }
  request.log.error({ err: error }, 'gateway error')
  await reply.code(500).send({
    error: {
      message: 'The gateway failed to handle the request.',
      type: 'server_error',
      param: null,
      code: null,
    },
  })
}

async function sendError(gate: Gate, request: FastifyRequest, reply: FastifyReply, error: GatewayError) {
  const headers = closeIfUploading(request, await peekHeaders(gate, request))
  await reply.code(error.status).headers(headers).send(error.body)
}

/** Rate-limit headers for an answer that charged nothing (bad input), from a peek. */
async function peekHeaders(gate: Gate, request: FastifyRequest): Promise<Record<string, string>> {
  const id = gate.identities.get(request)
  if (!id?.identity || id.allowListed) return {}
  const { sluice } = gate
  try {
    const decision = await sluice
      .limiterFor(id.identity)
      .peek(id.identity.subject, { requests: 0, concurrent: 0 })
    return decision.allowed ? sluice.headersFor(decision) : {}
  } catch {
    return {}
  }
}
