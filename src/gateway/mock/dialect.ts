/** What one API's part of the mock upstream provides, and the helpers every part shares. */
import type { ServerResponse } from 'node:http'
import type { Encoder } from '../tokens.js'
import type { Call } from './wire.js'

/** Shared by every dialect's answers: pacing, ids, SSE and JSON writing with the failure modes. */
export interface MockContext {
  /** Unix seconds the mock started (the `created` of its answers). */
  created: number
  /** Completion length range when the request's maximum does not cut it shorter. */
  range: { min: number; max: number }
  embeddingDimensions: number
  /** Waits as long as generating this many tokens takes (undefined: no pacing). */
  tokenPause(tokens: number): Promise<unknown> | undefined
  /** Streams one SSE event per piece, failing as the call asked; false when cut short. */
  streamPieces(
    call: Call,
    pieces: string[],
    event: (piece: string, index: number) => string,
  ): Promise<boolean>
  sseHeaders(res: ServerResponse): void
  sendJson(call: Call, payload: unknown): Promise<void>
  /** An id derived from the request, so the same request gets a byte-identical answer. */
  idOf(call: Call, what: unknown): string
  /** A hash of what the answer derives from, computed once per call. */
  digestOf(call: Call, what: unknown): string
  /** One seed per choice (the body's `n`). */
  choiceSeeds(call: Call, what: unknown): string[]
  /** Counts a non-streamed answer's tokens into the record and takes as long as generating them would. */
  generate(call: Call, choices: string[][]): Promise<void>
}

export interface MockDialect {
  /** Whether a path belongs to this API (its 404s and 400s take this API's shape). */
  owns(path: string): boolean
  /** POST routes by path. */
  post: Record<string, (call: Call) => Promise<void>>
  /** GET routes by path (e.g. a model list). */
  get: Record<string, (res: ServerResponse, path: string) => void>
  /** An error body in this API's shape. */
  errorBody(status: number, message: string, type: string, param?: string | null): string
  /** Answers `x-mock-fail: overloaded` (default: a 503 in this API's shape). */
  overloaded?(call: Call): Promise<void>
  /** Prompt tokens of a request the mock fails before answering (still recorded as ground truth). */
  promptTokens(path: string, enc: Encoder, body: Record<string, unknown>): Promise<number>
}
