/** The dialects the gateway speaks, and which one a request path belongs to. */
import { countParts, type Encoder } from '../tokens.js'
import { anthropic } from './anthropic.js'
import { openai } from './openai.js'
import type { Dialect, Estimate, ValidRequest } from './types.js'

export { anthropic } from './anthropic.js'
export { openai } from './openai.js'
export type * from './types.js'

/** Every dialect, most specific first: the last one owns every request no other claims. */
export const DIALECTS: readonly Dialect[] = [anthropic, openai]

/** The dialect of a request (for its errors and its 404s): by path, then by the client's headers. */
export function dialectFor(path: string, headers: Record<string, string | string[] | undefined>): Dialect {
  for (const dialect of DIALECTS) if (dialect.owns(path, headers)) return dialect
  return openai
}

/** Prompt tokens counted on this thread with the model's encoding, plus the output the request may produce. */
export function estimateRequest(
  dialect: Dialect,
  req: ValidRequest,
  enc: Encoder,
  defaultOutputTokens: number,
): Estimate {
  return {
    promptTokens: countParts(enc, dialect.promptParts(req)),
    outputTokens: dialect.outputTokens(req, defaultOutputTokens),
  }
}
