/**
 * The mock's Anthropic answers: Messages (plain and streamed with every event type, tool use,
 * prompt caching) and count_tokens, counted with the gateway's own Claude approximation.
 */
import { AnthropicParts } from '../dialects/anthropic-prompt.js'
import { isRecord } from '../dialects/types.js'
import type { Encoder, PromptParts } from '../tokens.js'
import type { MockContext, MockDialect } from './dialect.js'
import { completionPieces, hash32 } from './generate.js'
import { type Call, countPrompt, type MockRecord, write } from './wire.js'

function errorBody(status: number, message: string, _type: string): string {
  const type =
    status === 404
      ? 'not_found_error'
      : status === 429
        ? 'rate_limit_error'
        : status === 529
          ? 'overloaded_error'
          : status >= 500
            ? 'api_error'
            : 'invalid_request_error'
  return JSON.stringify({ type: 'error', error: { type, message } })
}

function promptTokens(_path: string, enc: Encoder, body: Record<string, unknown>): Promise<number> {
  return countPrompt(enc, new AnthropicParts().body(body).parts)
}

export function anthropicMock(ctx: MockContext): MockDialect {
  const { range, tokenPause, streamPieces, sseHeaders, sendJson, idOf, digestOf } = ctx
  /** Prompt prefixes cached so far (by model and content): the first call writes, later ones read. */
  const cache = new Set<string>()

  /** Splits the prompt into plain input, cache read and cache write, as Anthropic's usage does. */
  async function countInput(call: Call): Promise<void> {
    const collected = new AnthropicParts().body(call.body)
    const total = await countPrompt(call.enc, collected.parts)
    const record = call.record
    record.promptTokens = total
    const prefix = collected.cachePrefix
    if (prefix === undefined) return
    const parts: PromptParts = {
      fixed: prefix.fixed,
      texts: collected.parts.texts.slice(0, prefix.texts),
      scale: collected.parts.scale,
    }
    const tokens = Math.min(total, await countPrompt(call.enc, parts))
    const key = `${call.model}\n${hash32(JSON.stringify(parts.texts)).toString(36)}\n${parts.fixed}`
    if (cache.has(key)) record.cachedTokens = tokens
    else {
      cache.add(key)
      if (prefix.ttl === '1h') record.cacheWrite1hTokens = tokens
      else record.cacheWriteTokens = tokens
    }
  }

  function usageOf(record: MockRecord) {
    const read = record.cachedTokens ?? 0
    const write5m = record.cacheWriteTokens ?? 0
    const write1h = record.cacheWrite1hTokens ?? 0
    return {
      input_tokens: record.promptTokens - read - write5m - write1h,
      cache_creation_input_tokens: write5m + write1h,
      cache_read_input_tokens: read,
      cache_creation: { ephemeral_5m_input_tokens: write5m, ephemeral_1h_input_tokens: write1h },
      output_tokens: record.completionTokens,
      service_tier: 'standard',
    }
  }

  /** The tool the request forces (tool_choice any / tool), if any. */
  function forcedTool(body: Record<string, unknown>): string | undefined {
    const tools = Array.isArray(body.tools) ? body.tools.filter(isRecord) : []
    const choice = isRecord(body.tool_choice) ? body.tool_choice : undefined
    if (tools.length === 0 || choice === undefined) return undefined
    if (choice.type === 'tool' && typeof choice.name === 'string') return choice.name
    if (choice.type === 'any' && typeof tools[0]!.name === 'string') return tools[0]!.name
    return undefined
  }

  async function messages(call: Call): Promise<void> {
    const { body, record, model } = call
    await countInput(call)
    const maxTokens = body.max_tokens as number
    const what = [body.system, body.messages, body.tools]
    const id = `msg_${idOf(call, what)}`
    const tool = forcedTool(body)
    const toolId = `toolu_${hash32(`${id}\ntool`).toString(36)}`
    // A forced tool call answers with its input as JSON pieces; otherwise text.
    const pieces = tool
      ? ['{"query": ', `"${digestOf(call, what)}"`, '}']
      : completionPieces(`${model}\n${digestOf(call, what)}`, range, maxTokens)
    const stopReason = tool ? 'tool_use' : pieces.length >= maxTokens ? 'max_tokens' : 'end_turn'
    const block = tool
      ? { type: 'tool_use', id: toolId, name: tool, input: JSON.parse(pieces.join('')) }
      : { type: 'text', text: pieces.join('') }
    const message = (content: unknown[], stop: string | null, usage: unknown) => ({
      id,
      type: 'message',
      role: 'assistant',
      model,
      content,
      stop_reason: stop,
      stop_sequence: null,
      usage,
    })
    if (body.stream === true) {
      const event = (type: string, data: Record<string, unknown>) =>
        `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`
      sseHeaders(call.res)
      const start = tool
        ? { type: 'tool_use', id: toolId, name: tool, input: {} }
        : { type: 'text', text: '' }
      const head =
        event('message_start', { message: message([], null, usageOf(record)) }) +
        event('content_block_start', { index: 0, content_block: start }) +
        event('ping', {})
      if (!(await write(call, head))) return
      const whole = await streamPieces(call, pieces, (piece) =>
        event('content_block_delta', {
          index: 0,
          delta: tool
            ? { type: 'input_json_delta', partial_json: piece }
            : { type: 'text_delta', text: piece },
        }),
      )
      if (!whole) return
      const tail =
        event('content_block_stop', { index: 0 }) +
        event('message_delta', {
          delta: { stop_reason: stopReason, stop_sequence: null },
          usage: usageOf(record),
        }) +
        event('message_stop', {})
      if (!(await write(call, tail))) return
      record.usageSent = true
      call.res.end()
      return
    }
    const outputTokens = call.enc.count(pieces.join(''))
    await tokenPause(outputTokens)
    record.completionTokens = outputTokens
    await sendJson(call, message([block], stopReason, usageOf(record)))
  }

  /** 529 overloaded_error; on a stream, an `error` event after `message_start` (as Anthropic does). */
  async function overloaded(call: Call): Promise<void> {
    const error = { type: 'overloaded_error', message: 'Overloaded (x-mock-fail: overloaded)' }
    if (call.body.stream !== true) {
      call.record.promptTokens = await promptTokens('', call.enc, call.body)
      call.res.writeHead(529, { 'content-type': 'application/json' })
      call.res.end(JSON.stringify({ type: 'error', error }))
      return
    }
    await countInput(call)
    const message = {
      id: `msg_${idOf(call, call.body.messages)}`,
      type: 'message',
      role: 'assistant',
      model: call.model,
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: usageOf(call.record),
    }
    sseHeaders(call.res)
    if (
      !(await write(
        call,
        `event: message_start\ndata: ${JSON.stringify({ type: 'message_start', message })}\n\n`,
      ))
    )
      return
    call.record.usageSent = true
    call.res.end(`event: error\ndata: ${JSON.stringify({ type: 'error', error })}\n\n`)
  }

  async function countTokens(call: Call): Promise<void> {
    // Free at Anthropic: nothing is generated, so the record carries no tokens to charge.
    const inputTokens = await promptTokens('', call.enc, call.body)
    call.res.writeHead(200, { 'content-type': 'application/json' })
    call.res.end(JSON.stringify({ input_tokens: inputTokens }))
  }

  return {
    owns: (path) => path === '/v1/messages' || path.startsWith('/v1/messages/'),
    post: { '/v1/messages': messages, '/v1/messages/count_tokens': countTokens },
    get: {},
    errorBody,
    promptTokens,
    overloaded,
  }
}
