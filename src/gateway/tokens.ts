import { modelToEncodingMap } from 'gpt-tokenizer/mapping'
import type { EncodingName } from './config/schema.js'
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

/**
 * Counts of texts seen lately, per encoder: a conversation sends its whole history again on each
 * turn, and system prompts repeat on every call, so most texts of a prompt were counted before.
 * Only texts up to COUNT_CACHE_CHARS (the ones counted on the event loop) are kept, at most
 * COUNT_CACHE_ENTRIES of them (a few MB at worst); the cache is emptied when full.
 */
export const COUNT_CACHE_ENTRIES = 1_024
export const COUNT_CACHE_CHARS = 4_096

function cachedCounter(count: (text: string) => number): (text: string) => number {
  const counts = new Map<string, number>()
  return (text) => {
    if (text.length > COUNT_CACHE_CHARS) return count(text)
    let n = counts.get(text)
    if (n === undefined) {
      n = count(text)
      if (counts.size >= COUNT_CACHE_ENTRIES) counts.clear()
      counts.set(text, n)
    }
    return n
  }
}

/** The encoder for an encoding, loaded once (each vocabulary costs ~100 ms and some MB to load). */
export function encoderFor(encoding: EncodingName): Promise<Encoder> {
  let encoder = encoders.get(encoding)
  if (!encoder) {
    encoder = loadCounter(encoding).then((countTokens) => {
      const countPiece = (text: string) => countTokens(text, AS_TEXT)
      const count = cachedCounter((text) => countInRuns(countPiece, text))
      return {
        encoding,
        count: (text: string) => (text === '' ? 0 : count(text)),
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

/**
 * A prompt as what its tokens are made of: the tokens known without a tokenizer (framing, images,
 * token ids) and the texts to count. Collecting them costs no counting, so a request's size can be
 * judged (counting.ts: lowerBound) before any tokenizer runs.
 */
export interface PromptParts {
  fixed: number
  texts: string[]
  /**
   * Tokens of the texts per token of the encoding, for a model whose tokenizer is not one the
   * gateway has (Anthropic's dialect: a conservative factor over o200k_base). Default 1.
   */
  scale?: number
}

/** Text tokens counted with the encoding, scaled to the model's tokenizer (rounded up). */
export function scaled(tokens: number, scale: number | undefined): number {
  return scale === undefined || scale === 1 ? tokens : Math.ceil(tokens * scale)
}

/** Counts parts on this thread: for small prompts (counting.ts decides what is small). */
export function countParts(enc: Encoder, parts: PromptParts): number {
  let texts = 0
  for (const text of parts.texts) texts += enc.count(text)
  return parts.fixed + scaled(texts, parts.scale)
}
