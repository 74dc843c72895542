/** Validation of OpenAI request bodies, with OpenAI's own error messages and codes. */
import { describe } from '../../core/errors.js'
import { type GatewayError, invalidRequest } from '../errors.js'
import { isRecord, type RouteKind, type ValidRequest } from './types.js'

const MAX_MODEL_NAME = 256

function missing(param: string): GatewayError {
  return invalidRequest(`Missing required parameter: '${param}'.`, param, 'missing_required_parameter')
}

function wrongType(param: string, expected: string, value: unknown): GatewayError {
  return invalidRequest(
    `Invalid type for '${param}': expected ${expected}, but got ${describe(value)} instead.`,
    param,
    'invalid_type',
  )
}

/** An optional integer field: absent/null, or a whole number ≥ min (≤ max). */
function checkInteger(
  body: Record<string, unknown>,
  param: string,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): void {
  const value = body[param]
  if (value === undefined || value === null) return
  if (typeof value !== 'number' || !Number.isInteger(value)) throw wrongType(param, 'an integer', value)
  if (value < min) {
    throw invalidRequest(
      `Invalid '${param}': integer below minimum value. Expected a value >= ${min}, but got ${value} instead.`,
      param,
      'integer_below_min_value',
    )
  }
  if (value > max) {
    throw invalidRequest(
      `Invalid '${param}': integer above maximum value. Expected a value <= ${max}, but got ${value} instead.`,
      param,
      'integer_above_max_value',
    )
  }
}

function isTokenList(value: unknown): boolean {
  return (
    Array.isArray(value) && value.length > 0 && value.every((t) => Number.isInteger(t) && (t as number) >= 0)
  )
}

/** A prompt/input: a string, a list of strings, a list of token ids, or a list of such lists. */
function checkTextInput(body: Record<string, unknown>, param: string): void {
  const value = body[param]
  if (value === undefined || value === null) throw missing(param)
  if (typeof value === 'string') return
  const ok =
    Array.isArray(value) &&
    value.length > 0 &&
    (isTokenList(value) || value.every((item) => typeof item === 'string' || isTokenList(item)))
  if (!ok) throw wrongType(param, 'a string, an array of strings, or an array of token ids', value)
}

/** Validates an OpenAI-style request body for a route; throws a 400 GatewayError naming the bad field. */
export function validateOpenAIRequest(kind: RouteKind, body: unknown): ValidRequest {
  if (!isRecord(body)) {
    throw invalidRequest(
      `The request body must be a JSON object, got ${Array.isArray(body) ? 'an array' : body === null ? 'null' : typeof body}.`,
      null,
      'invalid_body',
    )
  }
  const model = body.model
  if (model === undefined || model === null || model === '') {
    throw invalidRequest('You must provide a model parameter.', 'model', 'missing_required_parameter')
  }
  if (typeof model !== 'string') throw wrongType('model', 'a string', model)
  if (model.length > MAX_MODEL_NAME) {
    throw invalidRequest(
      `Invalid 'model': longer than ${MAX_MODEL_NAME} characters.`,
      'model',
      'invalid_value',
    )
  }
  const stream = body.stream
  if (stream !== undefined && stream !== null && typeof stream !== 'boolean')
    throw wrongType('stream', 'a boolean', stream)
  const options = body.stream_options
  if (options !== undefined && options !== null) {
    if (!isRecord(options)) throw wrongType('stream_options', 'an object', options)
    if (options.include_usage !== undefined && typeof options.include_usage !== 'boolean') {
      throw wrongType('stream_options.include_usage', 'a boolean', options.include_usage)
    }
  }
  switch (kind) {
    case 'chat': {
      const messages = body.messages
      if (messages === undefined || messages === null) throw missing('messages')
      if (!Array.isArray(messages)) throw wrongType('messages', 'an array', messages)
      if (messages.length === 0) {
        throw invalidRequest(
          "Invalid 'messages': empty array. Expected an array with minimum length 1.",
          'messages',
          'empty_array',
        )
      }
      messages.forEach((m, i) => {
        if (!isRecord(m)) throw wrongType(`messages[${i}]`, 'an object', m)
        if (typeof m.role !== 'string') throw missing(`messages[${i}].role`)
      })
      checkInteger(body, 'max_tokens', 1)
      checkInteger(body, 'max_completion_tokens', 1)
      checkInteger(body, 'n', 1, 128)
      break
    }
    case 'completions':
      checkTextInput(body, 'prompt')
      checkInteger(body, 'max_tokens', 0)
      checkInteger(body, 'n', 1, 128)
      checkInteger(body, 'best_of', 1, 20)
      break
    case 'embeddings':
      checkTextInput(body, 'input')
      checkInteger(body, 'dimensions', 1)
      if (body.stream === true)
        throw invalidRequest("'stream' is not supported for embeddings.", 'stream', 'invalid_value')
      break
    case 'responses': {
      const input = body.input
      if (input !== undefined && input !== null && typeof input !== 'string' && !Array.isArray(input)) {
        throw wrongType('input', 'a string or an array of input items', input)
      }
      checkInteger(body, 'max_output_tokens', 1)
      break
    }
    case 'models':
      break
  }
  return {
    kind,
    model,
    stream: stream === true,
    body,
    clientWantsUsage: isRecord(options) && options.include_usage === true,
  }
}
