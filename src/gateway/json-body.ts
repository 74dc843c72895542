import type { FastifyRequest } from 'fastify'
import { GatewayError, invalidRequest } from './errors.js'

/**
 * Deepest nesting of arrays and objects a request body may have. Real requests stay far below it
 * (a tool's JSON schema nested ten levels is about 25 levels of body); a body nested thousands of
 * levels deep parses, but then breaks JSON.stringify (a RangeError: a 500, after being charged),
 * and millions of levels take seconds to parse.
 */
export const MAX_JSON_DEPTH = 128

/**
 * Whether JSON text nests arrays/objects deeper than `max`. Linear, and stops at the first level
 * too deep; strings are skipped with indexOf, so a large string costs little. Malformed text
 * answers false and is left to JSON.parse to refuse.
 */
export function nestedDeeperThan(text: string, max: number): boolean {
  let depth = 0
  const length = text.length
  let i = 0
  while (i < length) {
    const c = text.charCodeAt(i)
    if (c === 0x22) {
      // Find the closing quote: the next one not escaped by an odd number of backslashes.
      let from = i + 1
      for (;;) {
        const quote = text.indexOf('"', from)
        if (quote === -1) return false
        let slashes = 0
        for (let b = quote - 1; b > i && text.charCodeAt(b) === 0x5c; b--) slashes++
        from = quote + 1
        if (slashes % 2 === 0) break
      }
      i = from
      continue
    }
    if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true
    } else if (c === 0x5d || c === 0x7d) depth--
    i++
  }
  return false
}

const INVALID_JSON =
  'We could not parse the JSON body of your request. The body must be a JSON object (with the header Content-Type: application/json).'

type JsonParser = (
  request: FastifyRequest,
  body: string,
  done: (error: Error | null, body?: unknown) => void,
) => void

/** Fastify's JSON parser (prototype-poisoning checks included) behind the depth bound. */
export function boundedJsonParser(parse: JsonParser): JsonParser {
  return (request, body, done) => {
    if (nestedDeeperThan(body, MAX_JSON_DEPTH)) {
      done(
        invalidRequest(
          `The JSON body nests arrays and objects more than ${MAX_JSON_DEPTH} levels deep; the limit is ${MAX_JSON_DEPTH}.`,
          null,
          'json_too_deep',
        ),
      )
      return
    }
    parse(request, body, done)
  }
}

function formatBytes(bytes: number): string {
  if (bytes % (1024 * 1024) === 0) return `${bytes / (1024 * 1024)} MB`
  if (bytes % 1024 === 0) return `${bytes / 1024} KB`
  return `${bytes} bytes`
}

/** Maps what Fastify throws while reading a body to the OpenAI-shaped 4xx a client understands. */
export function bodyError(
  error: { code?: string; statusCode?: number; message: string },
  bodyLimit: number,
): GatewayError | undefined {
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new GatewayError(
        413,
        `The request body is too large: the limit is ${formatBytes(bodyLimit)}.`,
        'invalid_request_error',
        null,
        'request_too_large',
      )
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return invalidRequest(INVALID_JSON, null, 'invalid_json')
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return invalidRequest(
        'The Content-Length header does not match the body.',
        null,
        'invalid_content_length',
      )
  }
  if (error instanceof SyntaxError || (error.statusCode === 400 && /JSON/i.test(error.message))) {
    return invalidRequest(INVALID_JSON, null, 'invalid_json')
  }
  if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
    return new GatewayError(
      error.statusCode,
      error.message,
      'invalid_request_error',
      null,
      error.code ?? null,
    )
  }
  return undefined
}
