/**
 * The gateway writes its own errors (and the HTTP layer its denials) in one shape, OpenAI's
 * `{"error":{"message","type","param","code"}}`; this hook gives them the shape of the dialect the
 * request's path belongs to, so every refusal — bad input, unknown key, 429, 404, 503 — reads as
 * the client's API would write it.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import { peekTrace } from '../trace.js'
import { dialectFor, openai } from './index.js'
import { type ErrorInfo, isRecord } from './types.js'

function pathOf(url: string): string {
  const q = url.indexOf('?')
  return q === -1 ? url : url.slice(0, q)
}

/** The error an OpenAI-shaped body describes, or undefined when the body is not one. */
export function errorInfoOf(status: number, body: unknown): ErrorInfo | undefined {
  if (!isRecord(body) || !isRecord(body.error)) return undefined
  const { message, type, param, code } = body.error
  if (typeof message !== 'string') return undefined
  return {
    status,
    message,
    type: typeof type === 'string' ? type : 'server_error',
    param: typeof param === 'string' ? param : null,
    code: typeof code === 'string' ? code : null,
  }
}

/** Fastify preSerialization hook: an error body in the shape of the request's dialect, with its headers. */
export async function shapeErrors(
  request: FastifyRequest,
  reply: FastifyReply,
  payload: unknown,
): Promise<unknown> {
  const dialect = dialectFor(pathOf(request.url), request.headers)
  if (dialect === openai) return payload
  if (dialect.decorateHeaders !== undefined) {
    const headers = reply.getHeaders() as Record<string, string>
    const added: Record<string, string> = { ...headers }
    // A refusal's decision (the limits as they stand, nothing charged) gives the per-kind headers too.
    dialect.decorateHeaders(added, Date.now(), peekTrace(request)?.decision)
    for (const name in added) if (headers[name] === undefined) reply.header(name, added[name])
  }
  if (reply.statusCode < 400) return payload
  const info = errorInfoOf(reply.statusCode, payload)
  return info === undefined ? payload : dialect.errorBody(info)
}
