import type { EventEmitter } from 'node:events'
import { type Dispatcher, Pool } from 'undici'
import type { EncodingName, UpstreamConfig } from './config/schema.js'
import type { Dialect } from './dialects/types.js'
import { type MockUpstream, startMockUpstream } from './mock/server.js'

/** Response headers never passed from the upstream to the client. */
const DROPPED_RESPONSE_HEADERS = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'content-length',
  'content-encoding',
  'proxy-authenticate',
  'proxy-connection',
  'trailer',
  'upgrade',
  'set-cookie',
  'date',
  'server',
  'alt-svc',
  // They name the operator's account with the provider: which organisation and project pay.
  'openai-organization',
  'openai-project',
  'anthropic-organization-id',
  'x-ms-deployment-name',
  'azureml-model-deployment',
  'x-ms-region',
  // The upstream's own limits (IETF style) describe the operator's account, not the client's.
  'ratelimit',
  'ratelimit-policy',
])

/**
 * Headers that describe the operator's account rather than the call: the upstream's rate limits
 * (x-ratelimit-*, anthropic-ratelimit-*, x-ms-ratelimit-*) and anything naming an organisation,
 * project or account, whatever the provider calls it.
 */
const ACCOUNT_HEADER = /(^|-)ratelimit-|(^|-)(organi[sz]ation|org|project|account)(-id)?$/

/** A character outside ASCII (header values are checked for \t and \x20-\x7e, \x80-\xff by Node). */
const NOT_ASCII = /[^\t\x20-\x7e]/

/**
 * Fills `head` with the response head as `writeHead` takes it flat (`[name, value, name, value,
 * …]`): what of the upstream's headers reaches the client, less those the gateway sets itself,
 * then the gateway's `own` (its value wins, one line a name). Not passed on: hop-by-hop headers,
 * cookies or server details, and nothing that identifies the operator's account with the
 * provider. Request ids (x-request-id, request-id) and timings (openai-processing-ms) stay: they
 * name one call, and a client quoting one in a support request is what they are for. A flat list is
 * walked by index; an object of ~15 names added one by one is a dictionary to V8, which
 * `writeHead` walks with `for…in` and a lookup per name. Answers whether every upstream value
 * taken is plain ASCII text (not a list): then the head's bytes are the same whether Node writes it
 * as latin1 on its own or as UTF-8 together with a body text (the gateway's own values are ASCII).
 */
export function responseHead(
  upstream: Record<string, string | string[] | undefined>,
  own: Record<string, string>,
  head: (string | string[])[],
): boolean {
  let ascii = true
  for (const name in upstream) {
    const value = upstream[name]
    if (value === undefined) continue
    const lower = name.toLowerCase()
    if (DROPPED_RESPONSE_HEADERS.has(lower) || ACCOUNT_HEADER.test(lower) || Object.hasOwn(own, lower)) {
      continue
    }
    if (ascii && (typeof value !== 'string' || NOT_ASCII.test(value))) ascii = false
    head.push(lower, value)
  }
  for (const name in own) head.push(name, own[name]!)
  return ascii
}

export class UpstreamError extends Error {
  override name = 'UpstreamError'
  constructor(
    message: string,
    /** 504 for timeouts, 502 otherwise. */
    readonly status: 502 | 504,
    readonly code: string,
  ) {
    super(message)
  }
}

function describeFailure(name: string, error: unknown): UpstreamError {
  const code = (error as { code?: string }).code ?? ''
  if (
    code === 'UND_ERR_HEADERS_TIMEOUT' ||
    code === 'UND_ERR_BODY_TIMEOUT' ||
    code === 'UND_ERR_CONNECT_TIMEOUT'
  ) {
    return new UpstreamError(`The upstream "${name}" did not answer in time.`, 504, 'upstream_timeout')
  }
  return new UpstreamError(
    `The upstream "${name}" could not be reached (${code || (error as Error).message}).`,
    502,
    'upstream_unavailable',
  )
}

/**
 * Cancels one upstream call when its client leaves. The least of an EventTarget that undici takes as
 * a signal (`aborted`, `addEventListener` / `removeEventListener` of 'abort'): one is made per call,
 * and an AbortController, or an EventEmitter's once-wrappers, cost more than this plain list.
 */
export class CallAbort {
  aborted = false
  private listeners: Array<() => void> = []

  addEventListener(_type: 'abort', listener: () => void): void {
    if (!this.aborted) this.listeners.push(listener)
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    const i = this.listeners.indexOf(listener)
    if (i !== -1) this.listeners.splice(i, 1)
  }

  abort(): void {
    if (this.aborted) return
    this.aborted = true
    const listeners = this.listeners
    this.listeners = []
    for (const listener of listeners) listener()
  }
}

export interface ForwardRequest {
  method: 'GET' | 'POST'
  /** Path after the base URL, e.g. "/chat/completions". */
  path: string
  body?: string
  stream: boolean
  signal: CallAbort
  /** The call's API: it authenticates the gateway upstream and names the client headers passed on. */
  dialect: Dialect
  /** Client headers: the dialect picks what goes on (x-mock-* reach the mock too), never the client's key. */
  clientHeaders: Record<string, string | string[] | undefined>
}

/** One OpenAI-compatible upstream behind a pool of keep-alive connections. */
export class Upstream {
  private constructor(
    readonly name: string,
    readonly config: UpstreamConfig,
    readonly baseUrl: string,
    private readonly pool: Pool,
    private readonly basePath: string,
    /** The operator's key for this upstream (from the environment), when it has one. */
    private readonly key: string | undefined,
    /** The in-process mock, when this upstream is one. */
    readonly mock: MockUpstream | undefined,
  ) {}

  static async create(
    name: string,
    config: UpstreamConfig,
    env: Record<string, string | undefined>,
    encodingFor: (model: string) => EncodingName,
  ): Promise<Upstream> {
    let mock: MockUpstream | undefined
    let baseUrl: string
    let key: string | undefined
    if (config.type === 'mock') {
      mock = await startMockUpstream({
        latencyMs: config.latency,
        tokensPerSecond: config.tokensPerSecond,
        completionTokens: config.completionTokens,
        embeddingDimensions: config.embeddingDimensions,
        encodingFor,
        ...(config.rateLimits !== undefined && { rateLimits: config.rateLimits }),
      })
      baseUrl = mock.url
    } else {
      baseUrl = config.baseUrl.replace(/\/+$/, '')
      const value = env[config.apiKeyEnv]
      if (value !== undefined && value !== '') key = value
    }
    const url = new URL(baseUrl)
    const pool = new Pool(url.origin, {
      connections: config.connections,
      headersTimeout: config.headersTimeout,
      bodyTimeout: config.bodyTimeout,
      connect: { timeout: config.connectTimeout },
      keepAliveTimeout: 30_000,
    })
    return new Upstream(name, config, baseUrl, pool, url.pathname.replace(/\/+$/, ''), key, mock)
  }

  /** Whether the gateway may add stream_options.include_usage to streams it forwards here. */
  get injectStreamUsage(): boolean {
    return this.config.type === 'mock' || (this.config.type === 'openai' && this.config.injectStreamUsage)
  }

  /** Whether this upstream speaks a dialect (the mock speaks all of them). */
  speaks(dialect: Dialect): boolean {
    return this.config.type === 'mock' || this.config.type === dialect.name
  }

  /** Has credentials (or needs none: a mock or a server that was not given a key variable). */
  get hasKey(): boolean {
    return this.key !== undefined
  }

  /** Sends a request; throws UpstreamError when no response arrives (the caller's abort rethrows as is). */
  async request(req: ForwardRequest): Promise<Dispatcher.ResponseData> {
    const headers: Record<string, string> = {
      accept: req.stream ? 'text/event-stream' : 'application/json',
      'accept-encoding': 'identity',
      'user-agent': 'sluice-gateway',
    }
    if (req.body !== undefined) headers['content-type'] = 'application/json'
    if (this.config.type !== 'mock') Object.assign(headers, this.config.headers)
    Object.assign(headers, req.dialect.upstreamHeaders(this.key, req.clientHeaders))
    if (this.mock) {
      for (const [name, value] of Object.entries(req.clientHeaders)) {
        if (name.startsWith('x-mock-') && typeof value === 'string') headers[name] = value
      }
    }
    try {
      return await this.pool.request({
        method: req.method,
        path: `${this.basePath}${req.path}`,
        headers,
        body: req.body,
        // undici's types name AbortSignal and EventEmitter; at run time it takes any EventTarget.
        signal: req.signal as unknown as EventEmitter,
      })
    } catch (error) {
      if (req.signal.aborted) throw error
      throw describeFailure(this.name, error)
    }
  }

  /** Maps an error thrown while reading the body to an UpstreamError. */
  failure(error: unknown): UpstreamError {
    return error instanceof UpstreamError ? error : describeFailure(this.name, error)
  }

  async close(): Promise<void> {
    await this.pool.destroy().catch(() => {})
    await this.mock?.close()
  }
}
