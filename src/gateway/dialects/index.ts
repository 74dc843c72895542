/** The dialects the gateway speaks, and which one a request path belongs to. */
import { countParts, type Encoder } from '../tokens.js'
import { openai } from './openai.js'
import type { Dialect, Estimate, ValidRequest } from './types.js'

export { openai } from './openai.js'
export type * from './types.js'

/** Every dialect, most specific first: the last one owns every path no other claims. */
export const DIALECTS: readonly Dialect[] = [openai]

/** The dialect of a request path (for its routes, its errors and its 404s). */
export function dialectForPath(path: string): Dialect {
  for (const dialect of DIALECTS) if (dialect.owns(path)) return dialect
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
