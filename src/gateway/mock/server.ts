import { once } from 'node:events'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import type { EncodingName } from '../config/schema.js'
import { isRecord } from '../is-record.js'
import { chatPromptParts, encoderFor, encodingForModel, inputParts, responsesPromptParts } from '../tokens.js'
import { completionPieces, embeddingVector, hash32 } from './generate.js'
import {
  type Call,
  countPrompt,
  endStream,
  errorBody,
  type MockRecord,
  parseFailure,
  promptTokensFor,
  sendJson as sendJsonOf,
  sseHeaders as sseHeadersOf,
  streamPieces as streamPiecesOf,
  waitForClose,
  write,
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
}

export interface MockUpstream {
  /** Base URL including /v1, as an upstream `baseUrl`. */
  url: string
  records: MockRecord[]
  close(): Promise<void>
}

const MODELS = ['mock-1', 'gpt-4o-mini', 'gpt-4o', 'gpt-4.1-mini', 'text-embedding-3-small']

export async function startMockUpstream(options: MockUpstreamOptions = {}): Promise<MockUpstream> {
  const latencyMs = options.latencyMs ?? 0
  const tokensPerSecond = options.tokensPerSecond ?? 0
  const range = options.completionTokens ?? { min: 16, max: 96 }
  const dimensions = options.embeddingDimensions ?? 256
  const encodingFor = options.encodingFor ?? encodingForModel
  const records: MockRecord[] = []
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

  function maxTokensOf(body: Record<string, unknown>, ...fields: string[]): number | undefined {
    for (const f of fields) if (typeof body[f] === 'number') return body[f] as number
    return undefined
  }

  async function chat(call: Call): Promise<void> {
    const { body, record, model } = call
    record.promptTokens = await countPrompt(call.enc, chatPromptParts(body))
    const maxTokens = maxTokensOf(body, 'max_completion_tokens', 'max_tokens')
    const choices = choiceSeeds(call, body.messages).map((seed) => completionPieces(seed, range, maxTokens))
    const finish = (pieces: string[]) =>
      maxTokens !== undefined && pieces.length >= maxTokens ? 'length' : 'stop'
    const id = `chatcmpl-${idOf(call, body.messages)}`
    if (body.stream === true) {
      const includeUsage = isRecord(body.stream_options) && body.stream_options.include_usage === true
      const usageField = includeUsage ? { usage: null } : {}
      const chunk = (choice: unknown) =>
        `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model, system_fingerprint: 'fp_mock', choices: [choice], ...usageField })}\n\n`
      sseHeaders(call.res)
      for (const [index, pieces] of choices.entries()) {
        if (
          !(await write(
            call,
            chunk({ index, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }),
          ))
        )
          return
        const whole = await streamPieces(call, pieces, (piece) =>
          chunk({ index, delta: { content: piece }, logprobs: null, finish_reason: null }),
        )
        if (!whole) return
        if (!(await write(call, chunk({ index, delta: {}, logprobs: null, finish_reason: finish(pieces) }))))
          return
      }
      const final = includeUsage
        ? {
            id,
            object: 'chat.completion.chunk',
            created,
            model,
            system_fingerprint: 'fp_mock',
            choices: [],
            usage: usageOf(record),
          }
        : undefined
      await endStream(call, final)
      return
    }
    await generate(call, choices)
    await sendJson(call, {
      id,
      object: 'chat.completion',
      created,
      model,
      system_fingerprint: 'fp_mock',
      choices: choices.map((pieces, index) => ({
        index,
        message: { role: 'assistant', content: pieces.join(''), refusal: null, annotations: [] },
        logprobs: null,
        finish_reason: finish(pieces),
      })),
      usage: usageOf(record),
    })
  }

  /** Counts a non-streamed answer's tokens and takes as long as generating them would. */
  async function generate(call: Call, choices: string[][]): Promise<void> {
    const completionTokens = choices.reduce((s, p) => s + call.enc.count(p.join('')), 0)
    await tokenPause(completionTokens)
    call.record.completionTokens = completionTokens
  }

  function usageOf(record: MockRecord) {
    return {
      prompt_tokens: record.promptTokens,
      completion_tokens: record.completionTokens,
      total_tokens: record.promptTokens + record.completionTokens,
      prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
      completion_tokens_details: {
        reasoning_tokens: 0,
        audio_tokens: 0,
        accepted_prediction_tokens: 0,
        rejected_prediction_tokens: 0,
      },
    }
  }

  async function completions(call: Call): Promise<void> {
    const { body, record, model } = call
    record.promptTokens = await countPrompt(call.enc, inputParts(body.prompt))
    const maxTokens = maxTokensOf(body, 'max_tokens') ?? 16
    const choices = choiceSeeds(call, body.prompt).map((seed) => completionPieces(seed, range, maxTokens))
    const finish = (pieces: string[]) => (pieces.length >= maxTokens ? 'length' : 'stop')
    const id = `cmpl-${idOf(call, body.prompt)}`
    const usage = () => ({
      prompt_tokens: record.promptTokens,
      completion_tokens: record.completionTokens,
      total_tokens: record.promptTokens + record.completionTokens,
    })
    if (body.stream === true) {
      const includeUsage = isRecord(body.stream_options) && body.stream_options.include_usage === true
      const usageField = includeUsage ? { usage: null } : {}
      const chunk = (choice: unknown) =>
        `data: ${JSON.stringify({ id, object: 'text_completion', created, model, choices: [choice], ...usageField })}\n\n`
      sseHeaders(call.res)
      for (const [index, pieces] of choices.entries()) {
        const whole = await streamPieces(call, pieces, (piece) =>
          chunk({ text: piece, index, logprobs: null, finish_reason: null }),
        )
        if (!whole) return
        if (!(await write(call, chunk({ text: '', index, logprobs: null, finish_reason: finish(pieces) }))))
          return
      }
      const final = includeUsage
        ? { id, object: 'text_completion', created, model, choices: [], usage: usage() }
        : undefined
      await endStream(call, final)
      return
    }
    await generate(call, choices)
    await sendJson(call, {
      id,
      object: 'text_completion',
      created,
      model,
      choices: choices.map((pieces, index) => ({
        text: pieces.join(''),
        index,
        logprobs: null,
        finish_reason: finish(pieces),
      })),
      usage: usage(),
    })
  }

  async function embeddings(call: Call): Promise<void> {
    const { body, record, model } = call
    record.promptTokens = await countPrompt(call.enc, inputParts(body.input))
    const inputs =
      Array.isArray(body.input) && !body.input.every((x) => typeof x === 'number') ? body.input : [body.input]
    const dims = typeof body.dimensions === 'number' ? body.dimensions : dimensions
    const base64 = body.encoding_format === 'base64'
    await sendJson(call, {
      object: 'list',
      data: inputs.map((input, index) => {
        const vector = embeddingVector(`${model}\n${JSON.stringify(input)}`, dims)
        return {
          object: 'embedding',
          index,
          embedding: base64 ? Buffer.from(new Float32Array(vector).buffer).toString('base64') : vector,
        }
      }),
      model,
      usage: { prompt_tokens: record.promptTokens, total_tokens: record.promptTokens },
    })
  }

  async function responses(call: Call): Promise<void> {
    const { body, record, model } = call
    record.promptTokens = await countPrompt(call.enc, responsesPromptParts(body))
    const maxTokens = maxTokensOf(body, 'max_output_tokens')
    const what = [body.instructions, body.input]
    const pieces = completionPieces(`${model}\n${digestOf(call, what)}`, range, maxTokens)
    const id = `resp_${idOf(call, what)}`
    const itemId = `msg_${hash32(`${id}\nmessage`).toString(36)}`
    const usage = () => ({
      input_tokens: record.promptTokens,
      input_tokens_details: { cached_tokens: 0 },
      output_tokens: record.completionTokens,
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: record.promptTokens + record.completionTokens,
    })
    const incomplete = maxTokens !== undefined && pieces.length >= maxTokens
    const response = (status: string, output: unknown[], withUsage: boolean) => ({
      id,
      object: 'response',
      created_at: created,
      status,
      error: null,
      incomplete_details: status === 'incomplete' ? { reason: 'max_output_tokens' } : null,
      instructions: body.instructions ?? null,
      max_output_tokens: maxTokens ?? null,
      model,
      output,
      parallel_tool_calls: true,
      previous_response_id: null,
      temperature: 1,
      text: { format: { type: 'text' } },
      tool_choice: 'auto',
      tools: [],
      top_p: 1,
      truncation: 'disabled',
      usage: withUsage ? usage() : null,
      metadata: {},
    })
    const message = (text: string, status: string) => ({
      id: itemId,
      type: 'message',
      status,
      role: 'assistant',
      content:
        text === '' && status === 'in_progress' ? [] : [{ type: 'output_text', text, annotations: [] }],
    })
    const final = incomplete ? 'incomplete' : 'completed'
    if (body.stream === true) {
      let seq = 0
      const event = (type: string, data: Record<string, unknown>) =>
        `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: seq++, ...data })}\n\n`
      sseHeaders(call.res)
      const head = [
        event('response.created', { response: response('in_progress', [], false) }),
        event('response.in_progress', { response: response('in_progress', [], false) }),
        event('response.output_item.added', { output_index: 0, item: message('', 'in_progress') }),
        event('response.content_part.added', {
          item_id: itemId,
          output_index: 0,
          content_index: 0,
          part: { type: 'output_text', text: '', annotations: [] },
        }),
      ].join('')
      if (!(await write(call, head))) return
      const whole = await streamPieces(call, pieces, (delta) =>
        event('response.output_text.delta', {
          item_id: itemId,
          output_index: 0,
          content_index: 0,
          delta,
          logprobs: [],
        }),
      )
      if (!whole) return
      const text = pieces.join('')
      const done = message(text, 'completed')
      const tail = [
        event('response.output_text.done', {
          item_id: itemId,
          output_index: 0,
          content_index: 0,
          text,
          logprobs: [],
        }),
        event('response.content_part.done', {
          item_id: itemId,
          output_index: 0,
          content_index: 0,
          part: { type: 'output_text', text, annotations: [] },
        }),
        event('response.output_item.done', { output_index: 0, item: done }),
        event(`response.${final}`, { response: response(final, [done], true) }),
      ].join('')
      if (!(await write(call, tail))) return
      record.usageSent = true
      call.res.end()
      return
    }
    const completionTokens = call.enc.count(pieces.join(''))
    await tokenPause(completionTokens)
    record.completionTokens = completionTokens
    await sendJson(call, response(final, [message(pieces.join(''), 'completed')], true))
  }

  const routes: Record<string, (call: Call) => Promise<void>> = {
    '/v1/chat/completions': chat,
    '/v1/completions': completions,
    '/v1/embeddings': embeddings,
    '/v1/responses': responses,
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0]!
    if (req.method === 'GET' && path === '/v1/models') {
      const data = MODELS.map((id) => ({ id, object: 'model', created, owned_by: 'sluice-mock' }))
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ object: 'list', data }))
      return
    }
    const route = routes[path]
    if (req.method !== 'POST' || !route) {
      res.writeHead(404, { 'content-type': 'application/json' })
      res.end(errorBody(`Unknown request URL: ${req.method} ${path}`, 'invalid_request_error'))
      return
    }
    const chunks: Buffer[] = []
    for await (const chunk of req) chunks.push(chunk as Buffer)
    let body: unknown
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'))
    } catch {
      res.writeHead(400, { 'content-type': 'application/json' })
      res.end(errorBody('The mock could not parse the JSON body.', 'invalid_request_error'))
      return
    }
    if (!isRecord(body) || typeof body.model !== 'string') {
      res.writeHead(400, { 'content-type': 'application/json' })
      res.end(errorBody('you must provide a model parameter', 'invalid_request_error', 'model'))
      return
    }
    const failure = parseFailure(req.headers['x-mock-fail'])
    if (typeof failure === 'string') {
      res.writeHead(400, { 'content-type': 'application/json' })
      res.end(errorBody(failure, 'invalid_request_error'))
      return
    }
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
    if (latencyMs > 0) await sleep(latencyMs)
    if (failure.kind === '500') {
      record.promptTokens = await promptTokensFor(path, enc, body)
      record.outcome = 'error'
      res.writeHead(500, { 'content-type': 'application/json' })
      res.end(errorBody('The mock upstream failed as asked (x-mock-fail: 500).', 'server_error'))
      return
    }
    if (failure.kind === 'timeout') {
      record.promptTokens = await promptTokensFor(path, enc, body)
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
        res.end(errorBody(`mock upstream error: ${String(error)}`, 'server_error'))
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
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
