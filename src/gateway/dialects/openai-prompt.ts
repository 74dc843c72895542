/** What an OpenAI request's prompt is made of, by OpenAI's counting recipe (chat, completions, embeddings, responses). */
import { countParts, type Encoder, type PromptParts } from '../tokens.js'
import { isRecord } from './types.js'

// OpenAI's chat format: every message costs 3 tokens of framing, a name 1 more, the reply 3.
const TOKENS_PER_MESSAGE = 3
const TOKENS_PER_NAME = 1
const REPLY_PRIMING = 3
// Images are billed by size and detail; without decoding them, assume one high-detail 1024² tile set.
const IMAGE_TOKENS_HIGH = 765
const IMAGE_TOKENS_LOW = 85

/** Message content: a string, or an array of parts (text counted, images estimated). */
function addContent(parts: PromptParts, content: unknown): void {
  if (typeof content === 'string') {
    parts.texts.push(content)
    return
  }
  if (!Array.isArray(content)) return
  for (const part of content) {
    if (typeof part === 'string') parts.texts.push(part)
    else if (isRecord(part)) {
      if (typeof part.text === 'string') parts.texts.push(part.text)
      else if (part.type === 'image_url' || part.type === 'input_image') {
        const detail = isRecord(part.image_url) ? part.image_url.detail : part.detail
        parts.fixed += detail === 'low' ? IMAGE_TOKENS_LOW : IMAGE_TOKENS_HIGH
      } else if (typeof part.refusal === 'string') parts.texts.push(part.refusal)
    }
  }
}

/** JSON values (tools, tool calls) are counted as their JSON text; the body's depth is bounded on parsing. */
function addJson(parts: PromptParts, value: unknown): void {
  if (value !== undefined && value !== null) parts.texts.push(JSON.stringify(value))
}

/** What a chat completion request's prompt is made of, by OpenAI's counting recipe. */
export function chatPromptParts(body: Record<string, unknown>): PromptParts {
  const parts: PromptParts = { fixed: REPLY_PRIMING, texts: [] }
  const messages = Array.isArray(body.messages) ? body.messages : []
  for (const message of messages) {
    if (!isRecord(message)) continue
    parts.fixed += TOKENS_PER_MESSAGE
    if (typeof message.role === 'string') parts.texts.push(message.role)
    addContent(parts, message.content)
    if (typeof message.name === 'string') {
      parts.fixed += TOKENS_PER_NAME
      parts.texts.push(message.name)
    }
    if (message.tool_calls !== undefined) addJson(parts, message.tool_calls)
    if (message.function_call !== undefined) addJson(parts, message.function_call)
    if (typeof message.tool_call_id === 'string') parts.texts.push(message.tool_call_id)
  }
  addJson(parts, body.tools)
  addJson(parts, body.functions)
  return parts
}

/** What a completions/embeddings input is made of: text, texts, token ids, or lists of token ids. */
export function inputParts(input: unknown): PromptParts {
  const parts: PromptParts = { fixed: 0, texts: [] }
  if (typeof input === 'string') parts.texts.push(input)
  else if (Array.isArray(input)) {
    if (input.every((x) => typeof x === 'number')) parts.fixed = input.length
    else {
      for (const item of input) {
        if (typeof item === 'string') parts.texts.push(item)
        else if (Array.isArray(item)) parts.fixed += item.length
      }
    }
  }
  return parts
}

/** What a Responses API request's prompt is made of: instructions plus input items. */
export function responsesPromptParts(body: Record<string, unknown>): PromptParts {
  const parts: PromptParts = { fixed: REPLY_PRIMING, texts: [] }
  if (typeof body.instructions === 'string') parts.texts.push(body.instructions)
  const input = body.input
  if (typeof input === 'string') {
    parts.fixed += TOKENS_PER_MESSAGE
    parts.texts.push('user', input)
  } else if (Array.isArray(input)) {
    for (const item of input) {
      if (typeof item === 'string') {
        parts.texts.push(item)
        continue
      }
      if (!isRecord(item)) continue
      parts.fixed += TOKENS_PER_MESSAGE
      if (typeof item.role === 'string') parts.texts.push(item.role)
      addContent(parts, item.content)
      if (typeof item.output === 'string') parts.texts.push(item.output)
      if (typeof item.arguments === 'string') parts.texts.push(item.arguments)
    }
  }
  addJson(parts, body.tools)
  return parts
}

/** Prompt tokens of a chat completion request, counted on this thread. */
export function chatPromptTokens(enc: Encoder, body: Record<string, unknown>): number {
  return countParts(enc, chatPromptParts(body))
}

/** Tokens of a completions/embeddings input, counted on this thread. */
export function inputTokens(enc: Encoder, input: unknown): number {
  return countParts(enc, inputParts(input))
}

/** Prompt tokens of a Responses API request, counted on this thread. */
export function responsesPromptTokens(enc: Encoder, body: Record<string, unknown>): number {
  return countParts(enc, responsesPromptParts(body))
}

/** How many prompts a completions request holds (a list of prompts gets n completions each). */
export function promptCount(prompt: unknown): number {
  if (!Array.isArray(prompt) || prompt.length === 0) return 1
  if (prompt.every((x) => typeof x === 'number')) return 1
  return prompt.length
}
