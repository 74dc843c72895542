import { once } from 'node:events'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import type { EncodingName } from '../config/schema.js'
import { isRecord } from '../dialects/types.js'
import { encoderFor, encodingForModel } from '../tokens.js'
import { anthropicMock } from './anthropic.js'
import type { MockContext, MockDialect } from './dialect.js'
import { hash32 } from './generate.js'
import { MockAccount, type MockRateLimits } from './limits.js'
import { openaiMock } from './openai.js'
import {
  type Call,
  type MockRecord,
  parseFailure,
  sendJson as sendJsonOf,
  sseHeaders as sseHeadersOf,
  streamPieces as streamPiecesOf,
  waitForClose,
} from './wire.js'

export type { MockRecord } from './wire.js'

export interface MockUpstreamOptions {
  host?: string
  /** 0 (default) picks a free port. */
  port?: number
  /** Delay before the first byte of every answer. */
  latencyMs?: number
  /** Pace of output tokens (streamed or not); 0 answers at once. */
  tokensPerSecond?: number
  /** Completion length range when max_tokens does not cut it shorter. */
  completionTokens?: { min: number; max: number }
  embeddingDimensions?: number
  /** Encoding used to count tokens for `usage` (default: by model name, as the gateway does). */
  encodingFor?: (model: string) => EncodingName
  /** The mock's own provider account: requests and tokens per minute, with the provider's headers and 429s. */
  rateLimits?: MockRateLimits
}

export interface MockUpstream {
  /** Base URL including /v1, as an upstream `baseUrl`. */
  url: string
  records: MockRecord[]
  /** The mock's provider account: its limits (setLimits), forced 429s (refuse) and the 429s sent. */
  account: MockAccount
  close(): Promise<void>
}

/** The most output a request asks for (providers count it against the token limit up front). */
function outputMaximum(body: Record<string, unknown>): number {
  for (const name of ['max_completion_tokens', 'max_tokens', 'max_output_tokens']) {
    const v = body[name]
    if (typeof v === 'number' && Number.isFinite(v) && v > 0) return v
  }
  return 0
}

export async function startMockUpstream(options: MockUpstreamOptions = {}): Promise<MockUpstream> {
  const latencyMs = options.latencyMs ?? 0
  const tokensPerSecond = options.tokensPerSecond ?? 0
  const range = options.completionTokens ?? { min: 16, max: 96 }
  const dimensions = options.embeddingDimensions ?? 256
  const encodingFor = options.encodingFor ?? encodingForModel
  const records: MockRecord[] = []
  const account = new MockAccount(options.rateLimits)
  let sequence = 0
  const created = Math.floor(Date.now() / 1000)

  const tokenPause = (tokens: number) =>
    tokensPerSecond > 0 && tokens > 0 ? sleep((tokens * 1000) / tokensPerSecond) : undefined
  const streamPieces = (call: Call, pieces: string[], event: (piece: string, index: number) => string) =>
    streamPiecesOf(call, pieces, event, tokenPause)
  const sseHeaders = (res: ServerResponse) => sseHeadersOf(res, sequence)
  const sendJson = (call: Call, payload: unknown) => sendJsonOf(call, payload, sequence)

  /** Ids derive from the request, so the same request gets a byte-identical answer. */
  function idOf(call: Call, what: unknown): string {
    return `mock${hash32(`${call.model}\n${digestOf(call, what)}`).toString(36)}`
  }

  /**
   * A hash of what the answer derives from (one `what` per call), computed once: a prompt may be
   * 10 MB, and a request with n choices would otherwise hash (and keep) n copies of it.
   */
  function digestOf(call: Call, what: unknown): string {
    call.digest ??= hash32(JSON.stringify(what)).toString(36)
    return call.digest
  }

  function choiceSeeds(call: Call, what: unknown): string[] {
    const n = typeof call.body.n === 'number' && call.body.n > 1 ? call.body.n : 1
    const base = `${call.model}\n${digestOf(call, what)}`
    return Array.from({ length: n }, (_, i) => `${base}\n${i}`)
  }

  /** Counts a non-streamed answer's tokens and takes as long as generating them would. */
  async function generate(call: Call, choices: string[][]): Promise<void> {
    const completionTokens = choices.reduce((s, p) => s + call.enc.count(p.join('')), 0)
    await tokenPause(completionTokens)
    call.record.completionTokens = completionTokens
  }

  const ctx: MockContext = {
    created,
    range,
    embeddingDimensions: dimensions,
    tokenPause,
    streamPieces,
    sseHeaders,
    sendJson,
    idOf,
    digestOf,
    choiceSeeds,
    generate,
  }
  // Most specific first: the last one answers every path no other claims.
  const anthropic = anthropicMock(ctx)
  const dialects: MockDialect[] = [anthropic, openaiMock(ctx)]
  const dialectOf = (path: string) => dialects.find((d) => d.owns(path)) ?? dialects[dialects.length - 1]!

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0]!
    const dialect = dialectOf(path)
    const errorBody = (status: number, message: string, type: string, param: string | null = null) => {
      res.writeHead(status, { 'content-type': 'application/json' })
      res.end(dialect.errorBody(status, message, type, param))
    }
    // A GET route ending in "/" answers every path under it (e.g. /v1/models/{model}).
    const get =
      req.method === 'GET'
        ? (dialect.get[path] ?? dialect.get[path.slice(0, path.lastIndexOf('/') + 1)])
        : undefined
    if (get) return get(res, path)
    const route = req.method === 'POST' ? dialect.post[path] : undefined
    if (!route) return errorBody(404, `Unknown request URL: ${req.method} ${path}`, 'invalid_request_error')
    const chunks: Buffer[] = []
    for await (const chunk of req) chunks.push(chunk as Buffer)
    let body: unknown
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'))
    } catch {
      return errorBody(400, 'The mock could not parse the JSON body.', 'invalid_request_error')
    }
    if (!isRecord(body) || typeof body.model !== 'string') {
      return errorBody(400, 'you must provide a model parameter', 'invalid_request_error', 'model')
    }
    const failure = parseFailure(req.headers['x-mock-fail'])
    if (typeof failure === 'string') return errorBody(400, failure, 'invalid_request_error')
    sequence++
    let closed = false
    res.once('close', () => {
      closed = true
    })
    const record: MockRecord = {
      route: path,
      model: body.model,
      stream: body.stream === true,
      promptTokens: 0,
      completionTokens: 0,
      usageSent: false,
      outcome: 'ok',
    }
    records.push(record)
    const enc = await encoderFor(encodingFor(body.model))
    const call: Call = {
      req,
      res,
      body,
      model: body.model,
      enc,
      record,
      failure,
      closed: () => closed,
      flushed: Promise.resolve(),
    }
    const verdict = account.check(
      dialect === anthropic ? 'anthropic' : 'openai',
      account.countsTokens ? (await dialect.promptTokens(path, enc, body)) + outputMaximum(body) : 0,
    )
    for (const [name, value] of Object.entries(verdict.headers)) res.setHeader(name, value)
    if (!verdict.allowed) {
      record.outcome = 'rate_limited'
      res.writeHead(verdict.status, { 'content-type': 'application/json' })
      res.end(verdict.body)
      return
    }
    if (latencyMs > 0) await sleep(latencyMs)
    if (failure.kind === '500') {
      record.promptTokens = await dialect.promptTokens(path, enc, body)
      record.outcome = 'error'
      return errorBody(500, 'The mock upstream failed as asked (x-mock-fail: 500).', 'server_error')
    }
    if (failure.kind === 'overloaded') {
      record.outcome = 'error'
      if (dialect.overloaded) return dialect.overloaded(call)
      record.promptTokens = await dialect.promptTokens(path, enc, body)
      return errorBody(
        503,
        'The mock upstream is overloaded as asked (x-mock-fail: overloaded).',
        'server_error',
      )
    }
    if (failure.kind === 'timeout') {
      record.promptTokens = await dialect.promptTokens(path, enc, body)
      record.outcome = 'timeout'
      await waitForClose(call)
      return
    }
    await route(call)
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) {
        res.writeHead(500, { 'content-type': 'application/json' })
        const path = (req.url ?? '/').split('?')[0]!
        res.end(dialectOf(path).errorBody(500, `mock upstream error: ${String(error)}`, 'server_error'))
      } else res.destroy()
    })
  })
  server.keepAliveTimeout = 65_000
  server.listen(options.port ?? 0, options.host ?? '127.0.0.1')
  await once(server, 'listening')
  const { address, port } = server.address() as AddressInfo
  const host = address.includes(':') ? `[${address}]` : address
  return {
    url: `http://${host}:${port}/v1`,
    records,
    account,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
