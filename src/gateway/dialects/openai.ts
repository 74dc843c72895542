/**
 * OpenAI's API (and every server that speaks it: vLLM, Ollama, LM Studio…): chat completions,
 * legacy completions, embeddings, the Responses API and the model list.
 */
import type { PromptParts } from '../tokens.js'
import { chatPromptParts, inputParts, promptCount, responsesPromptParts } from './openai-prompt.js'
import { OpenAIStreamTracker, readUsage, textOfResponse } from './openai-usage.js'
import { validateOpenAIRequest } from './openai-validate.js'
import { type Dialect, type DialectRoute, type ErrorInfo, isRecord, type ValidRequest } from './types.js'

const ROUTES: readonly DialectRoute[] = [
  { method: 'POST', url: '/v1/chat/completions', kind: 'chat', upstreamPath: '/chat/completions' },
  { method: 'POST', url: '/v1/completions', kind: 'completions', upstreamPath: '/completions' },
  { method: 'POST', url: '/v1/embeddings', kind: 'embeddings', upstreamPath: '/embeddings' },
  { method: 'POST', url: '/v1/responses', kind: 'responses', upstreamPath: '/responses' },
  { method: 'GET', url: '/v1/models', kind: 'models', upstreamPath: '/models' },
  {
    method: 'GET',
    url: '/v1/models/:model',
    kind: 'model',
    upstreamPath: (params) => `/models/${encodeURIComponent(params.model ?? '')}`,
  },
]

/** OpenAI's default max_tokens for the legacy completions endpoint. */
const COMPLETIONS_DEFAULT_MAX_TOKENS = 16

/** Routes whose streams carry usage only when asked for with stream_options.include_usage. */
const USAGE_ON_REQUEST = new Set(['chat', 'completions'])

function numberOr(value: unknown, fallback: number): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : fallback
}

function validate(kind: string, body: unknown): ValidRequest {
  if (kind === 'models' || kind === 'model')
    return { kind, model: '', stream: false, body: {}, clientWantsUsage: false }
  return validateOpenAIRequest(kind, body)
}

function promptParts(req: ValidRequest): PromptParts {
  const b = req.body
  switch (req.kind) {
    case 'chat':
      return chatPromptParts(b)
    case 'completions':
      return inputParts(b.prompt)
    case 'embeddings':
      return inputParts(b.input)
    case 'responses':
      return responsesPromptParts(b)
    default:
      return { fixed: 0, texts: [] }
  }
}

function outputTokens(req: ValidRequest, defaultOutputTokens: number): number {
  const b = req.body
  switch (req.kind) {
    case 'chat': {
      const perChoice = numberOr(b.max_completion_tokens, numberOr(b.max_tokens, defaultOutputTokens))
      return perChoice * numberOr(b.n, 1)
    }
    case 'completions': {
      const perChoice = numberOr(b.max_tokens, COMPLETIONS_DEFAULT_MAX_TOKENS)
      return perChoice * Math.max(numberOr(b.n, 1), numberOr(b.best_of, 1)) * promptCount(b.prompt)
    }
    case 'responses':
      return numberOr(b.max_output_tokens, defaultOutputTokens)
    default:
      return 0
  }
}

function errorBody(error: ErrorInfo): unknown {
  return { error: { message: error.message, type: error.type, param: error.param, code: error.code } }
}

export const openai: Dialect = {
  name: 'openai',
  routes: ROUTES,
  owns: () => true,
  validate,
  promptParts,
  outputTokens,
  upstreamBody(req, upstream) {
    // A stream reports usage only when asked: ask for it (and hide it from a client that did not).
    if (
      !req.stream ||
      !USAGE_ON_REQUEST.has(req.kind) ||
      req.clientWantsUsage ||
      !upstream.injectStreamUsage
    ) {
      return { body: req.body, stripUsage: false }
    }
    const options = isRecord(req.body.stream_options) ? req.body.stream_options : {}
    return { body: { ...req.body, stream_options: { ...options, include_usage: true } }, stripUsage: true }
  },
  usageOf: (answer) => (isRecord(answer) ? readUsage(answer.usage) : undefined),
  textOf: textOfResponse,
  streamTracker: (req, stripUsage) => new OpenAIStreamTracker(req.kind, stripUsage),
  errorBody,
  upstreamHeaders: (key): Record<string, string> =>
    key === undefined ? {} : { authorization: `Bearer ${key}` },
}
