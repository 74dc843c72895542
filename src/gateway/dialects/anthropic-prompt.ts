/**
 * What an Anthropic Messages request's prompt is made of. No tokenizer for current Claude models
 * ships, so texts are counted with o200k_base, scaled by a factor per tokenizer generation, plus a
 * number of tokens per character outside ASCII by script (o200k_base packs most scripts into far
 * fewer tokens than Claude's tokenizers do). The figures are calibrated against the tokenizer
 * Anthropic published and against published Claude measurements, and chosen to err high: see
 * docs/gateway.md ("How the Claude estimate is calibrated") and scripts/claude-token-scale.ts.
 * The reservation it makes is settled with the upstream's `usage`, so only the hold is approximate.
 */
import type { PromptParts } from '../tokens.js'
import { isRecord } from './types.js'

/** Claude tokens per o200k_base token for models on Claude 3's tokenizer (Claude 3 to Opus 4.6). */
export const CLAUDE_TOKEN_SCALE = 1.45
/**
 * The same for the tokenizer of Opus 4.7 on (up to 1.35× as many tokens, Anthropic says; up to
 * 1.47× measured), and for any model not known to use Claude 3's: erring high.
 */
export const CLAUDE_NEW_TOKEN_SCALE = 1.8
/** Model ids known to use Claude 3's tokenizer: claude-3*, and Opus, Sonnet and Haiku 4 up to 4.6. */
const CLAUDE_3_TOKENIZER =
  /^claude-(?:3(?:[-@]|$)|(?:opus|sonnet|haiku)-4(?:-[0-6](?:[-@]|$)|-20\d{6}|[@]|$))/

/** The factor over o200k_base counts for a model (the newer tokenizer's for an unknown one). */
export function claudeTokenScale(model: unknown): number {
  return typeof model === 'string' && CLAUDE_3_TOKENIZER.test(model)
    ? CLAUDE_TOKEN_SCALE
    : CLAUDE_NEW_TOKEN_SCALE
}

/** Tokens added per UTF-16 unit outside ASCII, by block (fitted on the corpus, then rounded up). */
export const CLAUDE_SCRIPT_TOKENS = {
  /** U+0080–U+036F and U+1E00–U+1FFF: accented Latin (Vietnamese, Polish, German…), Greek Extended. */
  latin: 1.3,
  /** U+0370–U+08FF: Greek, Cyrillic, Armenian, Hebrew, Arabic, Syriac. */
  alphabets: 0.8,
  /** U+0900–U+1DFF: Indic scripts, Thai, Lao, Tibetan, Myanmar, Georgian, Hangul Jamo, Ethiopic… */
  abugidas: 1.3,
  /** U+3000–U+D7FF: CJK punctuation and ideographs, kana, Hangul syllables. */
  cjk: 0.55,
  /** Everything else outside ASCII: symbols, punctuation, emoji (two units each). */
  other: 0.25,
} as const

/**
 * A request's texts outside ASCII are scanned exactly up to this many UTF-16 units in all (about
 * 4 ms here); beyond, every unit outside ASCII is charged as the dearest block (a bound from the
 * UTF-8 length, at no cost), so that a huge prompt cannot hold the event loop for long.
 */
export const SCRIPT_SCAN_UNITS = 1 << 20
const DEAREST = Math.max(...Object.values(CLAUDE_SCRIPT_TOKENS))

/**
 * The tokens CLAUDE_SCRIPT_TOKENS adds for a text, scanning at most `scanUnits` of it (0 at once
 * for ASCII: one native length check).
 */
export function scriptTokens(text: string, scanUnits: number = SCRIPT_SCAN_UNITS): number {
  const bytes = Buffer.byteLength(text, 'utf8')
  if (bytes === text.length) return 0
  const end = Math.min(text.length, scanUnits)
  let latin = 0
  let alphabets = 0
  let abugidas = 0
  let cjk = 0
  let other = 0
  for (let i = 0; i < end; i++) {
    const c = text.charCodeAt(i)
    if (c < 0x80) continue
    if (c < 0x370 || (c >= 0x1e00 && c < 0x2000)) latin++
    else if (c < 0x900) alphabets++
    else if (c < 0x1e00) abugidas++
    else if (c >= 0x3000 && c < 0xd800) cjk++
    else other++
  }
  const w = CLAUDE_SCRIPT_TOKENS
  let total =
    latin * w.latin + alphabets * w.alphabets + abugidas * w.abugidas + cjk * w.cjk + other * w.other
  if (end < text.length) {
    // Each unit outside ASCII takes at least one more UTF-8 byte than units: a bound on their number.
    const restUnits = text.length - end
    const restExtra = bytes - Buffer.byteLength(text.slice(0, end), 'utf8') - restUnits
    total += DEAREST * Math.min(restUnits, restExtra)
  }
  return Math.ceil(total)
}

/** Framing per message (role markers), and for the turn the answer starts. */
const TOKENS_PER_MESSAGE = 5
const REPLY_PRIMING = 5
/** The system prompt Anthropic adds when tools are given (its docs: 346 tokens at most, for tool_choice auto). */
const TOOL_USE_SYSTEM_TOKENS = 346
/**
 * Anthropic's image formula: tokens = width × height / 750, after an image is scaled down to fit
 * a long edge of 1568 px and the largest area its docs list unscaled (784 × 1568 px).
 */
const IMAGE_LONG_EDGE = 1568
const IMAGE_MAX_PIXELS = 784 * 1568
/** An image whose size cannot be read (a URL, an unknown format): the most one can cost. */
export const IMAGE_MAX_TOKENS = Math.ceil(IMAGE_MAX_PIXELS / 750)

/** Tokens of an image of this size, by Anthropic's documented formula (resized first). */
export function imageTokens(width: number, height: number): number {
  let w = width
  let h = height
  const long = Math.max(w, h)
  if (long > IMAGE_LONG_EDGE) {
    w = (w * IMAGE_LONG_EDGE) / long
    h = (h * IMAGE_LONG_EDGE) / long
  }
  if (w * h > IMAGE_MAX_PIXELS) {
    const shrink = Math.sqrt(IMAGE_MAX_PIXELS / (w * h))
    w *= shrink
    h *= shrink
  }
  return Math.min(IMAGE_MAX_TOKENS, Math.max(1, Math.ceil((Math.round(w) * Math.round(h)) / 750)))
}

/** Width and height from the first bytes of a PNG, GIF, JPEG or WebP file, or undefined. */
export function imageSize(bytes: Buffer): { width: number; height: number } | undefined {
  if (bytes.length >= 24 && bytes.readUInt32BE(0) === 0x89504e47) {
    return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) }
  }
  if (bytes.length >= 10 && bytes.toString('latin1', 0, 3) === 'GIF') {
    return { width: bytes.readUInt16LE(6), height: bytes.readUInt16LE(8) }
  }
  if (
    bytes.length >= 30 &&
    bytes.toString('latin1', 0, 4) === 'RIFF' &&
    bytes.toString('latin1', 8, 12) === 'WEBP'
  ) {
    const chunk = bytes.toString('latin1', 12, 16)
    if (chunk === 'VP8X') return { width: 1 + bytes.readUIntLE(24, 3), height: 1 + bytes.readUIntLE(27, 3) }
    if (chunk === 'VP8 ')
      return { width: bytes.readUInt16LE(26) & 0x3fff, height: bytes.readUInt16LE(28) & 0x3fff }
    if (chunk === 'VP8L') {
      const bits = bytes.readUInt32LE(21)
      return { width: 1 + (bits & 0x3fff), height: 1 + ((bits >> 14) & 0x3fff) }
    }
    return undefined
  }
  if (bytes.length >= 4 && bytes[0] === 0xff && bytes[1] === 0xd8) {
    let i = 2
    while (i + 9 < bytes.length) {
      if (bytes[i] !== 0xff) return undefined
      const marker = bytes[i + 1]!
      const length = bytes.readUInt16BE(i + 2)
      // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC) carry the frame size.
      if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
        return { width: bytes.readUInt16BE(i + 7), height: bytes.readUInt16BE(i + 5) }
      }
      i += 2 + length
    }
  }
  return undefined
}

/** Enough base64 for any of the headers imageSize reads (a JPEG's frame may come after its metadata). */
const IMAGE_HEAD_BASE64 = 65_536

function imageBlockTokens(block: Record<string, unknown>): number {
  const source = block.source
  if (!isRecord(source) || source.type !== 'base64' || typeof source.data !== 'string')
    return IMAGE_MAX_TOKENS
  const head = Buffer.from(source.data.slice(0, IMAGE_HEAD_BASE64), 'base64')
  const size = imageSize(head)
  return size === undefined ? IMAGE_MAX_TOKENS : imageTokens(size.width, size.height)
}

/** Collects a prompt's parts in cache order (tools, system, messages), noting where cache_control marks end. */
export class AnthropicParts {
  readonly parts: PromptParts = { fixed: REPLY_PRIMING, texts: [], scale: CLAUDE_NEW_TOKEN_SCALE }
  /** Units outside ASCII this request may still scan (SCRIPT_SCAN_UNITS in all). */
  private scanLeft = SCRIPT_SCAN_UNITS
  /** The prompt up to the last block marked with cache_control, and that mark's TTL. */
  cachePrefix: { fixed: number; texts: number; ttl: '5m' | '1h' } | undefined

  private mark(block: unknown): void {
    if (!isRecord(block) || !isRecord(block.cache_control)) return
    const ttl = block.cache_control.ttl === '1h' ? '1h' : '5m'
    this.cachePrefix = { fixed: this.parts.fixed, texts: this.parts.texts.length, ttl }
  }

  /** A text to count, and the tokens its characters outside ASCII add (with the text, in prefix order). */
  private add(text: string): void {
    this.parts.texts.push(text)
    const scan = Math.min(text.length, this.scanLeft)
    const tokens = scriptTokens(text, scan)
    if (tokens > 0) this.scanLeft -= scan
    this.parts.fixed += tokens
  }

  private json(value: unknown): void {
    if (value !== undefined && value !== null) this.add(JSON.stringify(value))
  }

  /** One content block (text, image, document, tool use and result, thinking). */
  block(block: unknown): void {
    if (typeof block === 'string') {
      this.add(block)
      return
    }
    if (!isRecord(block)) return
    switch (block.type) {
      case 'text':
        if (typeof block.text === 'string') this.add(block.text)
        break
      case 'image':
        this.parts.fixed += imageBlockTokens(block)
        break
      case 'document': {
        const source = block.source
        // A PDF is billed per page (its text and an image of it); unparsed, each decoded byte counts as a token.
        if (isRecord(source) && typeof source.data === 'string') {
          if (source.type === 'text') this.add(source.data)
          else this.parts.fixed += Math.ceil((source.data.length * 3) / 4)
        } else if (isRecord(source) && source.type === 'content') this.content(source.content)
        else this.parts.fixed += IMAGE_MAX_TOKENS
        break
      }
      case 'tool_use':
      case 'server_tool_use':
        if (typeof block.name === 'string') this.add(block.name)
        this.json(block.input)
        break
      case 'tool_result':
        this.content(block.content)
        break
      case 'thinking':
        if (typeof block.thinking === 'string') this.add(block.thinking)
        break
      default:
        // Blocks this gateway does not know are counted as their JSON: more than they cost, never less.
        this.json(block)
    }
    this.mark(block)
  }

  content(content: unknown): void {
    if (typeof content === 'string') this.add(content)
    else if (Array.isArray(content)) for (const block of content) this.block(block)
  }

  /** The whole request body: tools, then system, then messages. */
  body(body: Record<string, unknown>): this {
    this.parts.scale = claudeTokenScale(body.model)
    if (Array.isArray(body.tools) && body.tools.length > 0) {
      this.parts.fixed += TOOL_USE_SYSTEM_TOKENS
      for (const tool of body.tools) {
        this.json(tool)
        this.mark(tool)
      }
    }
    this.content(body.system)
    if (Array.isArray(body.messages)) {
      for (const message of body.messages) {
        if (!isRecord(message)) continue
        this.parts.fixed += TOKENS_PER_MESSAGE
        this.content(message.content)
      }
    }
    return this
  }
}

/** What a Messages request's prompt is made of. */
export function anthropicPromptParts(body: Record<string, unknown>): PromptParts {
  return new AnthropicParts().body(body).parts
}
