import { modelToEncodingMap } from 'gpt-tokenizer/mapping'
import type { EncodingName } from './config/schema.js'
import { isRecord } from './is-record.js'
import { countInRuns } from './long-runs.js'

/** Counts tokens of plain text with one BPE encoding, in time linear in the text (see long-runs.ts). */
export interface Encoder {
  readonly encoding: EncodingName
  count(text: string): number
}

/** Encoding for models that nothing names: the one of current OpenAI models. */
export const FALLBACK_ENCODING: EncodingName = 'o200k_base'

// Special-token strings such as "<|endoftext|>" in user text are counted as plain text, never rejected.
const AS_TEXT = { disallowedSpecial: new Set<string>() }

type CountFn = (text: string, options: typeof AS_TEXT) => number
interface EncodingModule {
  countTokens: CountFn
  setMergeCacheSize(size: number): void
}

/**
 * gpt-tokenizer keeps an LRU of 100,000 merged pieces in a Map; with many distinct pieces its
 * evictions slow down sharply (a second pass over 1 MB of varied words took 4-7 s instead of ~1.5 s).
 * A small cache keeps the benefit for repeated words without that cliff.
 */
const MERGE_CACHE_SIZE = 2_048

function importEncoding(encoding: EncodingName): Promise<EncodingModule> {
  switch (encoding) {
    case 'o200k_base':
      return import('gpt-tokenizer/encoding/o200k_base')
    case 'o200k_harmony':
      return import('gpt-tokenizer/encoding/o200k_harmony')
    case 'cl100k_base':
      return import('gpt-tokenizer/encoding/cl100k_base')
    case 'p50k_base':
      return import('gpt-tokenizer/encoding/p50k_base')
    case 'p50k_edit':
      return import('gpt-tokenizer/encoding/p50k_edit')
    case 'r50k_base':
      return import('gpt-tokenizer/encoding/r50k_base')
  }
}

async function loadCounter(encoding: EncodingName): Promise<CountFn> {
  const module = await importEncoding(encoding)
  module.setMergeCacheSize(MERGE_CACHE_SIZE)
  return module.countTokens
}

const encoders = new Map<EncodingName, Promise<Encoder>>()

/** The encoder for an encoding, loaded once (each vocabulary costs ~100 ms and some MB to load). */
export function encoderFor(encoding: EncodingName): Promise<Encoder> {
  let encoder = encoders.get(encoding)
  if (!encoder) {
    encoder = loadCounter(encoding).then((countTokens) => {
      const countPiece = (text: string) => countTokens(text, AS_TEXT)
      return {
        encoding,
        count: (text: string) => (text === '' ? 0 : countInRuns(countPiece, text)),
      }
    })
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

/**
 * A prompt as what its tokens are made of: the tokens known without a tokenizer (framing, images,
 * token ids) and the texts to count. Collecting them costs no counting, so a request's size can be
 * judged (counting.ts: lowerBound) before any tokenizer runs.
 */
export interface PromptParts {
  fixed: number
  texts: string[]
}

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

/** Counts parts on this thread: for small prompts (counting.ts decides what is small). */
export function countParts(enc: Encoder, parts: PromptParts): number {
  let total = parts.fixed
  for (const text of parts.texts) total += enc.count(text)
  return total
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
