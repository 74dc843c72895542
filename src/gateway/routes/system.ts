/** The gateway's own routes and answers: health, readiness, metrics, unknown URLs, the drain. */
import type { FastifyReply, FastifyRequest } from 'fastify'
import { type Gate, pathOf } from './context.js'

/** Routes that still answer while the gateway drains. */
const DRAINING_ROUTES = new Set(['/healthz', '/metrics', '/readyz'])

/** onRequest: while the gateway shuts down, new calls get an OpenAI-shaped 503 (health routes still answer). */
export async function refuseWhileDraining(gate: Gate, request: FastifyRequest, reply: FastifyReply) {
  if (!gate.lifecycle.closing || DRAINING_ROUTES.has(pathOf(request.url))) return
  await reply
    .code(503)
    .headers({ connection: 'close', 'retry-after': '1', 'retry-after-ms': '1000' })
    .send({
      error: {
        message: 'The gateway is shutting down. Please retry (another instance will answer).',
        type: 'server_error',
        param: null,
        code: 'shutting_down',
      },
    })
}

export async function healthz() {
  return { status: 'ok' }
}

/** 200 when the gateway can serve calls, 503 while it drains or cannot decide (store.readiness). */
export async function readyz(gate: Gate, _request: FastifyRequest, reply: FastifyReply) {
  if (gate.lifecycle.closing) return reply.code(503).send({ status: 'shutting down' })
  const readiness = await gate.store.readiness()
  return reply.code(readiness.ready ? 200 : 503).send(readiness.body)
}

export async function metrics(gate: Gate, _request: FastifyRequest, reply: FastifyReply) {
  const { contentType, body } = await gate.metrics.render()
  return reply.type(contentType).send(body)
}

export async function notFound(request: FastifyRequest, reply: FastifyReply) {
  await reply.code(404).send({
    error: {
      message: `Unknown request URL: ${request.method} ${pathOf(request.url)}. Please check the URL for typos.`,
      type: 'invalid_request_error',
      param: null,
      code: 'unknown_url',
    },
  })
}
