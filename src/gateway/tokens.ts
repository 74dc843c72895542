import { modelToEncodingMap } from 'gpt-tokenizer/mapping'
import type { EncodingName } from './config/schema.js'

/** Counts tokens of plain text with one BPE encoding. */
export interface Encoder {
  readonly encoding: EncodingName
  count(text: string): number
}

/** Encoding for models that nothing names: the one of current OpenAI models. */
export const FALLBACK_ENCODING: EncodingName = 'o200k_base'

// Special-token strings such as "<|endoftext|>" in user text are counted as plain text, never rejected.
const AS_TEXT = { disallowedSpecial: new Set<string>() }

type CountFn = (text: string, options: typeof AS_TEXT) => number

async function loadCounter(encoding: EncodingName): Promise<CountFn> {
  switch (encoding) {
    case 'o200k_base':
      return (await import('gpt-tokenizer/encoding/o200k_base')).countTokens
    case 'o200k_harmony':
      return (await import('gpt-tokenizer/encoding/o200k_harmony')).countTokens
    case 'cl100k_base':
      return (await import('gpt-tokenizer/encoding/cl100k_base')).countTokens
    case 'p50k_base':
      return (await import('gpt-tokenizer/encoding/p50k_base')).countTokens
    case 'p50k_edit':
      return (await import('gpt-tokenizer/encoding/p50k_edit')).countTokens
    case 'r50k_base':
      return (await import('gpt-tokenizer/encoding/r50k_base')).countTokens
  }
}

const encoders = new Map<EncodingName, Promise<Encoder>>()

/** The encoder for an encoding, loaded once (each vocabulary costs ~100 ms and some MB to load). */
export function encoderFor(encoding: EncodingName): Promise<Encoder> {
  let encoder = encoders.get(encoding)
  if (!encoder) {
    encoder = loadCounter(encoding).then((countTokens) => ({
      encoding,
      count: (text: string) => (text === '' ? 0 : countTokens(text, AS_TEXT)),
    }))
    encoders.set(encoding, encoder)
  }
  return encoder
}

const PREFIX_ENCODINGS: ReadonlyArray<[RegExp, EncodingName]> = [
  [/^gpt-oss/, 'o200k_harmony'],
  [/^(gpt-4o|gpt-4\.1|gpt-4\.5|gpt-5|chatgpt-|o1|o3|o4|codex|omni-)/, 'o200k_base'],
  [/^(gpt-4|gpt-3\.5|text-embedding-)/, 'cl100k_base'],
  [/^(text-davinci-00[23]|code-)/, 'p50k_base'],
  [/^(davinci|curie|babbage|ada|text-)/, 'r50k_base'],
]

/**
 * The encoding of a model by name: gpt-tokenizer's table, then name families (gpt-4o*, gpt-4*, …,
 * ignoring a "provider/" prefix), else o200k_base. Non-OpenAI models (Llama, Mistral, Qwen…) get
 * o200k_base: their own tokenizers usually land within ~10–20 % of it, and settling with the
 * upstream's reported usage corrects the difference.
 */
export function encodingForModel(model: string): EncodingName {
  const name = model.toLowerCase().replace(/^.*\//, '')
  const known = (modelToEncodingMap as Record<string, string | undefined>)[name]
  if (known !== undefined) return known as EncodingName
  for (const [pattern, encoding] of PREFIX_ENCODINGS) if (pattern.test(name)) return encoding
  return FALLBACK_ENCODING
}

// OpenAI's chat format: every message costs 3 tokens of framing, a name 1 more, the reply 3.
const TOKENS_PER_MESSAGE = 3
const TOKENS_PER_NAME = 1
const REPLY_PRIMING = 3
// Images are billed by size and detail; without decoding them, assume one high-detail 1024² tile set.
const IMAGE_TOKENS_HIGH = 765
const IMAGE_TOKENS_LOW = 85

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** Tokens of message content: a string, or an array of parts (text counted, images estimated). */
function contentTokens(enc: Encoder, content: unknown): number {
  if (typeof content === 'string') return enc.count(content)
  if (!Array.isArray(content)) return 0
  let total = 0
  for (const part of content) {
    if (typeof part === 'string') total += enc.count(part)
    else if (isRecord(part)) {
      if (typeof part.text === 'string') total += enc.count(part.text)
      else if (part.type === 'image_url' || part.type === 'input_image') {
        const detail = isRecord(part.image_url) ? part.image_url.detail : part.detail
        total += detail === 'low' ? IMAGE_TOKENS_LOW : IMAGE_TOKENS_HIGH
      } else if (typeof part.refusal === 'string') total += enc.count(part.refusal)
    }
  }
  return total
}

function jsonTokens(enc: Encoder, value: unknown): number {
  return value === undefined || value === null ? 0 : enc.count(JSON.stringify(value))
}

/** Prompt tokens of a chat completion request, by OpenAI's counting recipe. */
export function chatPromptTokens(enc: Encoder, body: Record<string, unknown>): number {
  let total = REPLY_PRIMING
  const messages = Array.isArray(body.messages) ? body.messages : []
  for (const message of messages) {
    if (!isRecord(message)) continue
    total += TOKENS_PER_MESSAGE
    if (typeof message.role === 'string') total += enc.count(message.role)
    total += contentTokens(enc, message.content)
    if (typeof message.name === 'string') total += TOKENS_PER_NAME + enc.count(message.name)
    if (message.tool_calls !== undefined) total += jsonTokens(enc, message.tool_calls)
    if (message.function_call !== undefined) total += jsonTokens(enc, message.function_call)
    if (typeof message.tool_call_id === 'string') total += enc.count(message.tool_call_id)
  }
  total += jsonTokens(enc, body.tools) + jsonTokens(enc, body.functions)
  return total
}

/** Tokens of a completions/embeddings input: text, texts, token ids, or lists of token ids. */
export function inputTokens(enc: Encoder, input: unknown): number {
  if (typeof input === 'string') return enc.count(input)
  if (!Array.isArray(input)) return 0
  if (input.every((x) => typeof x === 'number')) return input.length
  let total = 0
  for (const item of input) {
    if (typeof item === 'string') total += enc.count(item)
    else if (Array.isArray(item)) total += item.length
  }
  return total
}

/** Prompt tokens of a Responses API request: instructions plus input items. */
export function responsesPromptTokens(enc: Encoder, body: Record<string, unknown>): number {
  let total = typeof body.instructions === 'string' ? enc.count(body.instructions) : 0
  const input = body.input
  if (typeof input === 'string') total += TOKENS_PER_MESSAGE + enc.count('user') + enc.count(input)
  else if (Array.isArray(input)) {
    for (const item of input) {
      if (typeof item === 'string') {
        total += enc.count(item)
        continue
      }
      if (!isRecord(item)) continue
      total += TOKENS_PER_MESSAGE
      if (typeof item.role === 'string') total += enc.count(item.role)
      total += contentTokens(enc, item.content)
      if (typeof item.output === 'string') total += enc.count(item.output)
      if (typeof item.arguments === 'string') total += enc.count(item.arguments)
    }
  }
  total += REPLY_PRIMING + jsonTokens(enc, body.tools)
  return total
}

/** How many prompts a completions request holds (a list of prompts gets n completions each). */
export function promptCount(prompt: unknown): number {
  if (!Array.isArray(prompt) || prompt.length === 0) return 1
  if (prompt.every((x) => typeof x === 'number')) return 1
  return prompt.length
}
