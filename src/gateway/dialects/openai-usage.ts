/** Where OpenAI answers report usage and text: JSON bodies, chunk streams and Responses API events. */
import { jsonObject, parseSseEvent, withData } from '../sse.js'
import { isRecord, type ReportedUsage, type RouteKind, type StreamTracker } from './types.js'

function count(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : undefined
}

/**
 * Reads an OpenAI `usage` object (chat/completions/embeddings, or the Responses API's names).
 * Cached tokens are part of the prompt count and reasoning tokens part of the completion count,
 * as OpenAI bills them: they are split out, never added again.
 */
export function readUsage(usage: unknown): ReportedUsage | undefined {
  if (!isRecord(usage)) return undefined
  const prompt = count(usage.prompt_tokens) ?? count(usage.input_tokens)
  if (prompt === undefined) return undefined
  const completion = count(usage.completion_tokens) ?? count(usage.output_tokens) ?? 0
  const reported: ReportedUsage = { promptTokens: prompt, completionTokens: completion }
  const input = isRecord(usage.prompt_tokens_details)
    ? usage.prompt_tokens_details
    : usage.input_tokens_details
  const cached = isRecord(input) ? count(input.cached_tokens) : undefined
  if (cached) reported.cachedTokens = Math.min(cached, prompt)
  const output = isRecord(usage.completion_tokens_details)
    ? usage.completion_tokens_details
    : usage.output_tokens_details
  const reasoning = isRecord(output) ? count(output.reasoning_tokens) : undefined
  if (reasoning) reported.reasoningTokens = Math.min(reasoning, completion)
  return reported
}

/** Generated text in a non-streamed answer, for counting when the upstream reports no usage. */
export function textOfResponse(body: unknown): string {
  if (!isRecord(body)) return ''
  let text = ''
  if (Array.isArray(body.choices)) {
    for (const choice of body.choices) {
      if (!isRecord(choice)) continue
      if (typeof choice.text === 'string') text += choice.text
      const message = choice.message
      if (isRecord(message)) {
        if (typeof message.content === 'string') text += message.content
        if (typeof message.refusal === 'string') text += message.refusal
        if (message.tool_calls !== undefined && message.tool_calls !== null)
          text += JSON.stringify(message.tool_calls)
      }
    }
  }
  if (Array.isArray(body.output)) {
    for (const item of body.output) {
      if (!isRecord(item)) continue
      if (typeof item.arguments === 'string') text += item.arguments
      if (Array.isArray(item.content)) {
        for (const part of item.content)
          if (isRecord(part) && typeof part.text === 'string') text += part.text
      }
    }
  }
  return text
}

/**
 * Follows one streamed answer event by event: collects the usage the upstream reports, the text it
 * generated (for counting when no usage comes), and rewrites what the client did not ask for.
 */
export class OpenAIStreamTracker implements StreamTracker {
  usage: ReportedUsage | undefined
  /** Generated text seen so far. */
  text = ''
  /** The stream reached its proper end ([DONE] or a final response event). */
  complete = false

  /**
   * @param stripUsage the gateway injected stream_options.include_usage: drop the usage chunk and
   * the `usage: null` fields so the client sees the stream it asked for.
   */
  constructor(
    private readonly kind: RouteKind,
    private readonly stripUsage: boolean,
  ) {}

  /** The event text to forward ('' drops it). */
  onEvent(raw: string): string {
    const event = parseSseEvent(raw)
    if (event.data === undefined) return raw
    if (event.data === '[DONE]') {
      this.complete = true
      return raw
    }
    const payload = jsonObject(event.data)
    if (payload === undefined) return raw
    return this.kind === 'responses' ? this.onResponsesEvent(payload, raw) : this.onChunk(payload, event, raw)
  }

  private onChunk(
    chunk: Record<string, unknown>,
    event: ReturnType<typeof parseSseEvent>,
    raw: string,
  ): string {
    const choices = Array.isArray(chunk.choices) ? chunk.choices : []
    for (const choice of choices) {
      if (!isRecord(choice)) continue
      if (typeof choice.text === 'string') this.text += choice.text
      const delta = choice.delta
      if (!isRecord(delta)) continue
      for (const field of ['content', 'refusal', 'reasoning_content', 'reasoning']) {
        const value = delta[field]
        if (typeof value === 'string') this.text += value
      }
      if (Array.isArray(delta.tool_calls)) {
        for (const call of delta.tool_calls) {
          if (isRecord(call) && isRecord(call.function) && typeof call.function.arguments === 'string') {
            this.text += call.function.arguments
          }
        }
      }
    }
    const usage = readUsage(chunk.usage)
    if (usage) this.usage = usage
    if (!this.stripUsage || !('usage' in chunk)) return raw
    if (usage && choices.length === 0) return ''
    const { usage: _dropped, ...rest } = chunk
    return withData(event, JSON.stringify(rest))
  }

  private onResponsesEvent(event: Record<string, unknown>, raw: string): string {
    const type = event.type
    if (typeof type !== 'string') return raw
    if (type.endsWith('.delta') && typeof event.delta === 'string') {
      if (type !== 'response.audio.delta' && type !== 'response.audio.transcript.delta')
        this.text += event.delta
    } else if (
      type === 'response.completed' ||
      type === 'response.incomplete' ||
      type === 'response.failed'
    ) {
      this.complete = true
      if (isRecord(event.response)) {
        const usage = readUsage(event.response.usage)
        if (usage) this.usage = usage
      }
    }
    return raw
  }
}
