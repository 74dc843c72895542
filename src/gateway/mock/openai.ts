/** The mock's OpenAI answers: chat completions, completions, embeddings, responses and the model list. */
import type { ServerResponse } from 'node:http'
import { chatPromptParts, inputParts, responsesPromptParts } from '../dialects/openai-prompt.js'
import { isRecord } from '../dialects/types.js'
import type { Encoder } from '../tokens.js'
import type { MockContext, MockDialect } from './dialect.js'
import { completionPieces, embeddingVector, hash32 } from './generate.js'
import { type Call, countPrompt, endStream, type MockRecord, write } from './wire.js'

const MODELS = ['mock-1', 'gpt-4o-mini', 'gpt-4o', 'gpt-4.1-mini', 'text-embedding-3-small']

function errorBody(_status: number, message: string, type: string, param: string | null = null): string {
  return JSON.stringify({ error: { message, type, param, code: null } })
}

function promptTokens(path: string, enc: Encoder, body: Record<string, unknown>): Promise<number> {
  switch (path) {
    case '/v1/chat/completions':
      return countPrompt(enc, chatPromptParts(body))
    case '/v1/responses':
      return countPrompt(enc, responsesPromptParts(body))
    case '/v1/completions':
      return countPrompt(enc, inputParts(body.prompt))
    default:
      return countPrompt(enc, inputParts(body.input))
  }
}

export function openaiMock(ctx: MockContext): MockDialect {
  const {
    created,
    range,
    embeddingDimensions: dimensions,
    tokenPause,
    streamPieces,
    sseHeaders,
    sendJson,
  } = ctx
  const { idOf, digestOf, choiceSeeds, generate } = ctx

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

  function models(res: ServerResponse): void {
    const data = MODELS.map((id) => ({ id, object: 'model', created, owned_by: 'sluice-mock' }))
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ object: 'list', data }))
  }

  function model(res: ServerResponse, path: string): void {
    const id = decodeURIComponent(path.slice('/v1/models/'.length))
    if (!MODELS.includes(id)) {
      res.writeHead(404, { 'content-type': 'application/json' })
      res.end(
        JSON.stringify({
          error: {
            message: `The model '${id}' does not exist`,
            type: 'invalid_request_error',
            param: 'model',
            code: 'model_not_found',
          },
        }),
      )
      return
    }
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ id, object: 'model', created, owned_by: 'sluice-mock' }))
  }

  return {
    owns: () => true,
    post: {
      '/v1/chat/completions': chat,
      '/v1/completions': completions,
      '/v1/embeddings': embeddings,
      '/v1/responses': responses,
    },
    get: { '/v1/models': models, '/v1/models/': model },
    errorBody,
    promptTokens,
  }
}
