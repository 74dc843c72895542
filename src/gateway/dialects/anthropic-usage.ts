/** Where Anthropic Messages answers report usage and text: the message JSON and the stream's events. */
import { jsonObject, parseSseEvent } from '../sse.js'
import { isRecord, type ReportedUsage, type StreamTracker } from './types.js'

function count(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : undefined
}

/**
 * Reads an Anthropic `usage` object. Its `input_tokens` leaves out cache reads and writes, so the
 * prompt is their sum; the writes are split into 5-minute and 1-hour ones when `cache_creation`
 * says so (else all are 5-minute, Anthropic's default).
 */
export function readAnthropicUsage(usage: unknown, previous?: ReportedUsage): ReportedUsage | undefined {
  if (!isRecord(usage)) return undefined
  const output = count(usage.output_tokens)
  const input = count(usage.input_tokens)
  if (input === undefined && previous === undefined) return undefined
  const read = count(usage.cache_read_input_tokens)
  const written = count(usage.cache_creation_input_tokens)
  const breakdown = isRecord(usage.cache_creation) ? usage.cache_creation : undefined
  // A later event without the breakdown keeps the earlier one's 1-hour share.
  const written1h = breakdown
    ? (count(breakdown.ephemeral_1h_input_tokens) ?? 0)
    : (previous?.cacheWrite1hTokens ?? 0)
  // Fields absent from a later event (message_delta) keep their earlier value (message_start).
  const cachedTokens = read ?? previous?.cachedTokens ?? 0
  const cacheWrite1hTokens =
    written !== undefined ? Math.min(written1h, written) : (previous?.cacheWrite1hTokens ?? 0)
  const cacheWriteTokens =
    written !== undefined ? written - cacheWrite1hTokens : (previous?.cacheWriteTokens ?? 0)
  const plain =
    input ??
    (previous
      ? previous.promptTokens -
        previous.cachedTokens! -
        previous.cacheWriteTokens! -
        previous.cacheWrite1hTokens!
      : 0)
  return {
    promptTokens: plain + cachedTokens + cacheWriteTokens + cacheWrite1hTokens,
    completionTokens: output ?? previous?.completionTokens ?? 0,
    cachedTokens,
    cacheWriteTokens,
    cacheWrite1hTokens,
  }
}

/** Generated text of a message (text, tool input, thinking), for counting when no usage comes. */
export function textOfMessage(body: unknown): string {
  if (!isRecord(body) || !Array.isArray(body.content)) return ''
  let text = ''
  for (const block of body.content) {
    if (!isRecord(block)) continue
    if (typeof block.text === 'string') text += block.text
    if (typeof block.thinking === 'string') text += block.thinking
    if (block.input !== undefined) text += JSON.stringify(block.input)
  }
  return text
}

/**
 * Follows a streamed message: `message_start` carries the prompt's usage (output so far: partial),
 * `content_block_delta` the text, `message_delta` the final output count, `message_stop` the end.
 * Events pass unchanged: Anthropic streams always report usage, nothing needs hiding.
 */
export class AnthropicStreamTracker implements StreamTracker {
  usage: ReportedUsage | undefined
  text = ''
  complete = false
  failed = false

  onEvent(raw: string): string {
    const event = parseSseEvent(raw)
    if (event.data === undefined) return raw
    const payload = jsonObject(event.data)
    if (payload === undefined) return raw
    switch (payload.type) {
      case 'message_start': {
        const message = isRecord(payload.message) ? payload.message : undefined
        const usage = readAnthropicUsage(message?.usage)
        if (usage) this.usage = { ...usage, partial: true }
        break
      }
      case 'content_block_delta': {
        const delta = payload.delta
        if (!isRecord(delta)) break
        if (typeof delta.text === 'string') this.text += delta.text
        else if (typeof delta.partial_json === 'string') this.text += delta.partial_json
        else if (typeof delta.thinking === 'string') this.text += delta.thinking
        break
      }
      case 'message_delta': {
        const usage = readAnthropicUsage(payload.usage, this.usage)
        if (usage) this.usage = usage
        break
      }
      case 'message_stop':
        this.complete = true
        break
      case 'error':
        this.failed = true
        break
    }
    return raw
  }
}
