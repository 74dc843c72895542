/**
 * The seam between the gateway's accounting and the APIs it speaks. A dialect knows one provider's
 * wire format — its routes, how a body is checked, what a prompt is made of, how long an answer
 * may get, where the upstream reports usage (JSON or stream events), how errors look, how the
 * upstream is authenticated — and nothing about limits, reservations or the ledger, which
 * server.ts, accounting.ts and proxy.ts run once for every dialect.
 */
import type { Decision } from '../../limiter.js'
import type { PromptParts } from '../tokens.js'

/** A route's name in one dialect ("chat", "messages", …): it is the ledger's `route` column. */
export type RouteKind = string

/** One route the gateway serves, and where it goes upstream. */
export interface DialectRoute {
  method: 'GET' | 'POST'
  /** Fastify URL pattern, e.g. "/v1/chat/completions" or "/v1/models/:model". */
  url: string
  kind: RouteKind
  /** Path after the upstream's base URL; from the route's URL parameters when it has any. */
  upstreamPath: string | ((params: Record<string, string>) => string)
}

/** A request that passed its dialect's validation. */
export interface ValidRequest {
  kind: RouteKind
  /** The model named in the body ('' for routes that name none, e.g. a model list). */
  model: string
  stream: boolean
  /** The parsed body ({} for GET routes). */
  body: Record<string, unknown>
  /** The client asked for the usage that the dialect would otherwise ask for itself (OpenAI's include_usage). */
  clientWantsUsage: boolean
}

/** What a call is expected to cost before it is sent. */
export interface Estimate {
  promptTokens: number
  /** The most completion tokens the request can produce (or the expected length when unbounded). */
  outputTokens: number
}

/**
 * Token counts the upstream reported, split the way providers bill them. `promptTokens` is every
 * input token (cached, cache-written and plain alike) and `completionTokens` every output token
 * (reasoning included): the two add up to what the call used.
 */
export interface ReportedUsage {
  promptTokens: number
  completionTokens: number
  /** Of the prompt: read from the provider's prompt cache (billed at the cached-input price). */
  cachedTokens?: number
  /** Of the prompt: written to a 5-minute cache (Anthropic's default cache_control). */
  cacheWriteTokens?: number
  /** Of the prompt: written to a 1-hour cache. */
  cacheWrite1hTokens?: number
  /** Of the completion: reasoning tokens (billed as output). */
  reasoningTokens?: number
  /**
   * The output count is not final (a stream cut before its last usage event): the generated text
   * is counted too, and the larger of the two is charged.
   */
  partial?: boolean
}

/**
 * Follows one streamed answer event by event: the usage the upstream reports, the text generated
 * (counted when no usage comes), and what of each event reaches the client.
 */
export interface StreamTracker {
  usage: ReportedUsage | undefined
  /** Generated text seen so far. */
  text: string
  /** The stream reached its proper end. */
  complete: boolean
  /** The upstream reported an error inside the stream (its status had gone out already). */
  failed?: boolean
  /** One SSE event as received (without its blank-line terminator) → the text to forward ('' drops it). */
  onEvent(raw: string): string
}

/** An error the gateway answers itself, before the dialect gives it its shape. */
export interface ErrorInfo {
  status: number
  message: string
  /** OpenAI's error type ("invalid_request_error", "server_error", "requests", "tokens", …). */
  type: string
  param: string | null
  code: string | null
}

/** What is sent upstream for a validated request. */
export interface UpstreamBody {
  body: Record<string, unknown>
  /** The gateway added a usage request the client did not make: the tracker hides its answer. */
  stripUsage: boolean
}

/** What an upstream of this dialect needs to know about itself to shape a request. */
export interface UpstreamTraits {
  /** The gateway may add stream_options.include_usage (OpenAI-compatible servers that accept it). */
  injectStreamUsage: boolean
}

export interface Dialect {
  readonly name: string
  readonly routes: readonly DialectRoute[]
  /** Whether a request belongs to this dialect (its errors and 404s take this dialect's shape). */
  owns(path: string, headers: Record<string, string | string[] | undefined>): boolean
  /** Checks a body for a route; throws a 400 GatewayError naming the bad field. */
  validate(kind: RouteKind, body: unknown): ValidRequest
  /** What the prompt is made of (nothing counted yet). */
  promptParts(request: ValidRequest): PromptParts
  /** The most output tokens the request can produce (or the expected length when unbounded). */
  outputTokens(request: ValidRequest, defaultOutputTokens: number): number
  /** The body to send upstream (e.g. with the stream's usage asked for). */
  upstreamBody(request: ValidRequest, upstream: UpstreamTraits): UpstreamBody
  /** The usage of a non-streamed JSON answer. */
  usageOf(answer: unknown): ReportedUsage | undefined
  /** The generated text of a non-streamed answer (counted when it reports no usage). */
  textOf(answer: unknown): string
  /** A tracker for one streamed answer. */
  streamTracker(request: ValidRequest, stripUsage: boolean): StreamTracker
  /** The JSON body of an error in this dialect's shape. */
  errorBody(error: ErrorInfo): unknown
  /**
   * Headers that authenticate the gateway to an upstream of this dialect with the operator's key,
   * plus the client's headers passed on (e.g. Anthropic's API version); never the client's key.
   */
  upstreamHeaders(
    key: string | undefined,
    clientHeaders: Record<string, string | string[] | undefined>,
  ): Record<string, string>
  /**
   * Adds this dialect's own rate-limit headers to the gateway's (x-ratelimit-*, retry-after…), in
   * place; with the call's decision, also those of limits the HTTP layer does not name.
   */
  decorateHeaders?(headers: Record<string, string>, now: number, decision?: Decision): void
}

export { isRecord } from '../is-record.js'
