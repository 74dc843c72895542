/**
 * Anthropic's Messages API: POST /v1/messages (plain and streamed) and POST
 * /v1/messages/count_tokens, Anthropic-shaped errors and `anthropic-ratelimit-*` headers.
 */
import type { IncomingHttpHeaders } from 'node:http'
import { describe } from '../../core/errors.js'
import type { Decision, LimitStatus } from '../../limiter.js'
import { type GatewayError, invalidRequest } from '../errors.js'
import type { PromptParts } from '../tokens.js'
import { anthropicPromptParts } from './anthropic-prompt.js'
import { AnthropicStreamTracker, readAnthropicUsage, textOfMessage } from './anthropic-usage.js'
import { type Dialect, type DialectRoute, type ErrorInfo, isRecord, type ValidRequest } from './types.js'

const ROUTES: readonly DialectRoute[] = [
  { method: 'POST', url: '/v1/messages', kind: 'messages', upstreamPath: '/messages' },
  {
    method: 'POST',
    url: '/v1/messages/count_tokens',
    kind: 'count_tokens',
    upstreamPath: '/messages/count_tokens',
  },
]

/** The API version sent upstream when the client names none (the SDKs always do). */
export const DEFAULT_ANTHROPIC_VERSION = '2023-06-01'
const MAX_MODEL_NAME = 256
const ROLES = new Set(['user', 'assistant'])

function fieldError(param: string, message: string): GatewayError {
  return invalidRequest(`${param}: ${message}`, param, 'invalid_request_error')
}

function wrongType(param: string, expected: string, value: unknown): GatewayError {
  return fieldError(param, `Input should be ${expected}, got ${describe(value)}`)
}

/** A system prompt or message content: a string or a list of content blocks. */
function checkContent(param: string, value: unknown, blocksOnly = false): void {
  if (typeof value === 'string' && !blocksOnly) return
  if (!Array.isArray(value))
    throw wrongType(param, blocksOnly ? 'a list of blocks' : 'a string or a list of content blocks', value)
  value.forEach((block, i) => {
    if (!isRecord(block) || typeof block.type !== 'string') {
      throw wrongType(`${param}.${i}`, 'a content block with a "type"', block)
    }
  })
}

function validate(kind: string, body: unknown): ValidRequest {
  if (!isRecord(body)) {
    throw invalidRequest(
      `The request body must be a JSON object, got ${Array.isArray(body) ? 'an array' : body === null ? 'null' : typeof body}.`,
    )
  }
  const model = body.model
  if (model === undefined || model === null || model === '') throw fieldError('model', 'Field required')
  if (typeof model !== 'string') throw wrongType('model', 'a string', model)
  if (model.length > MAX_MODEL_NAME) throw fieldError('model', `longer than ${MAX_MODEL_NAME} characters`)
  const messages = body.messages
  if (messages === undefined || messages === null) throw fieldError('messages', 'Field required')
  if (!Array.isArray(messages)) throw wrongType('messages', 'a list', messages)
  messages.forEach((m, i) => {
    if (!isRecord(m)) throw wrongType(`messages.${i}`, 'an object', m)
    if (typeof m.role !== 'string' || !ROLES.has(m.role)) {
      throw fieldError(`messages.${i}.role`, `Input should be 'user' or 'assistant'`)
    }
    if (m.content === undefined) throw fieldError(`messages.${i}.content`, 'Field required')
    checkContent(`messages.${i}.content`, m.content)
  })
  if (body.system !== undefined && body.system !== null) checkContent('system', body.system)
  if (body.tools !== undefined && body.tools !== null && !Array.isArray(body.tools)) {
    throw wrongType('tools', 'a list', body.tools)
  }
  const stream = body.stream
  if (kind === 'messages') {
    if (messages.length === 0) throw fieldError('messages', 'at least one message is required')
    const maxTokens = body.max_tokens
    if (maxTokens === undefined || maxTokens === null) throw fieldError('max_tokens', 'Field required')
    if (typeof maxTokens !== 'number' || !Number.isInteger(maxTokens)) {
      throw wrongType('max_tokens', 'a valid integer', maxTokens)
    }
    if (maxTokens < 1) throw fieldError('max_tokens', 'Input should be greater than or equal to 1')
    if (stream !== undefined && stream !== null && typeof stream !== 'boolean') {
      throw wrongType('stream', 'a valid boolean', stream)
    }
  }
  return { kind, model, stream: kind === 'messages' && stream === true, body, clientWantsUsage: true }
}

/** Anthropic's error type for a status. */
export function anthropicErrorType(status: number): string {
  switch (status) {
    case 400:
      return 'invalid_request_error'
    case 401:
      return 'authentication_error'
    case 403:
      return 'permission_error'
    case 404:
      return 'not_found_error'
    case 413:
      return 'request_too_large'
    case 429:
      return 'rate_limit_error'
    case 503:
    case 529:
      return 'overloaded_error'
    default:
      return status >= 500 ? 'api_error' : 'invalid_request_error'
  }
}

function errorBody(error: ErrorInfo): unknown {
  return { type: 'error', error: { type: anthropicErrorType(error.status), message: error.message } }
}

function header(headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>, name: string) {
  const value = headers[name]
  return Array.isArray(value) ? value[0] : value
}

/** Milliseconds of an OpenAI-style duration ("6m0s", "1h2m3.5s", "12ms"), or undefined. */
function durationMs(text: string): number | undefined {
  const m = /^(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+(?:\.\d+)?)s)?(?:(\d+)ms)?$/.exec(text)
  if (!m || text === '') return undefined
  return (Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0)) * 1000 + Number(m[4] ?? 0)
}

/** The limit of a unit with the smallest share left. */
function tightestOf(decision: Decision, unit: string): LimitStatus | undefined {
  let best: LimitStatus | undefined
  for (const l of decision.limits) {
    if (l.unit !== unit) continue
    if (best === undefined || l.remaining / l.limit < best.remaining / best.limit) best = l
  }
  return best
}

/** An RFC 3339 time, to the second (rounded up: never earlier than the reset). */
function rfc3339(ms: number): string {
  return new Date(Math.ceil(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z')
}

export const anthropic: Dialect = {
  name: 'anthropic',
  routes: ROUTES,
  // Its routes, and any path an Anthropic client calls (they always send anthropic-version).
  owns: (path, headers) =>
    path === '/v1/messages' ||
    path.startsWith('/v1/messages/') ||
    header(headers, 'anthropic-version') !== undefined,
  validate,
  promptParts: (req): PromptParts =>
    req.kind === 'messages' ? anthropicPromptParts(req.body) : { fixed: 0, texts: [] },
  outputTokens: (req) => (req.kind === 'messages' ? (req.body.max_tokens as number) : 0),
  // Anthropic streams always carry usage: the body goes as it came.
  upstreamBody: (req) => ({ body: req.body, stripUsage: false }),
  usageOf: (answer) => (isRecord(answer) ? readAnthropicUsage(answer.usage) : undefined),
  textOf: textOfMessage,
  streamTracker: () => new AnthropicStreamTracker(),
  errorBody,
  upstreamHeaders(key, clientHeaders) {
    const headers: Record<string, string> = {
      'anthropic-version': header(clientHeaders, 'anthropic-version') ?? DEFAULT_ANTHROPIC_VERSION,
    }
    const beta = header(clientHeaders, 'anthropic-beta')
    if (beta !== undefined) headers['anthropic-beta'] = beta
    if (key !== undefined) headers['x-api-key'] = key
    return headers
  },
  /**
   * `anthropic-ratelimit-{requests,tokens}-{limit,remaining,reset}` from the OpenAI-style ones, and
   * with the decision `anthropic-ratelimit-{input,output}-tokens-*` from limits in those units.
   */
  decorateHeaders(headers, now, decision) {
    for (const unit of ['requests', 'tokens']) {
      const limit = headers[`x-ratelimit-limit-${unit}`]
      const remaining = headers[`x-ratelimit-remaining-${unit}`]
      if (limit === undefined || remaining === undefined) continue
      headers[`anthropic-ratelimit-${unit}-limit`] = limit
      headers[`anthropic-ratelimit-${unit}-remaining`] = remaining
      const reset = headers[`x-ratelimit-reset-${unit}`]
      const ms = reset === undefined ? undefined : durationMs(reset)
      if (ms !== undefined) headers[`anthropic-ratelimit-${unit}-reset`] = rfc3339(now + ms)
    }
    if (decision === undefined) return
    for (const [unit, name] of [
      ['input_tokens', 'input-tokens'],
      ['output_tokens', 'output-tokens'],
    ] as const) {
      const tightest = tightestOf(decision, unit)
      if (tightest === undefined) continue
      headers[`anthropic-ratelimit-${name}-limit`] = String(Math.floor(tightest.limit))
      headers[`anthropic-ratelimit-${name}-remaining`] = String(Math.max(0, Math.floor(tightest.remaining)))
      headers[`anthropic-ratelimit-${name}-reset`] = rfc3339(decision.now + tightest.resetMs)
    }
  },
}
