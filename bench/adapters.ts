/**
 * Loaders for parts of sluice that some rows need and that may not exist yet in this tree (the
 * Fastify plugin, the gateway, its token estimator). Each returns the piece, or why the row cannot
 * run, so that the bench reports "not available" instead of failing. Specifiers are plain strings so
 * that the typechecker does not require the modules to exist.
 */
import { existsSync } from 'node:fs'

export type Loaded<T> = { ok: true; value: T; from: string } | { ok: false; reason: string }

const SRC = new URL('../src/', import.meta.url)

async function importFirst(
  paths: string[],
): Promise<{ mod: Record<string, unknown>; from: string } | string> {
  for (const path of paths) {
    if (!existsSync(new URL(path.replace(/\.js$/, '.ts'), SRC))) continue
    const specifier: string = new URL(path, SRC).href
    return {
      mod: (await import(specifier)) as Record<string, unknown>,
      from: `src/${path.replace(/\.js$/, '.ts')}`,
    }
  }
  return `none of ${paths.map((p) => `src/${p.replace(/\.js$/, '.ts')}`).join(', ')} exists yet`
}

function pick<T>(
  found: { mod: Record<string, unknown>; from: string } | string,
  names: string[],
  what: string,
): Loaded<T> {
  if (typeof found === 'string') return { ok: false, reason: found }
  for (const name of names) {
    const value = found.mod[name]
    if (typeof value === 'function') return { ok: true, value: value as T, from: `${found.from} ${name}` }
  }
  return { ok: false, reason: `${found.from} has no ${what} export (looked for ${names.join(', ')})` }
}

/** sluice's Fastify plugin (src/http/fastify.ts). */
export async function loadFastifyPlugin(): Promise<Loaded<(...args: unknown[]) => unknown>> {
  return pick(
    await importFirst(['http/fastify.js', 'http/adapters/fastify.js']),
    ['sluice', 'default'],
    'Fastify plugin',
  )
}

/** The gateway's `startGateway` (src/gateway). */
export async function loadStartGateway(): Promise<Loaded<(options: unknown) => Promise<unknown>>> {
  return pick(
    await importFirst(['gateway/index.js', 'gateway/server.js', 'gateway/gateway.js', 'gateway/start.js']),
    ['startGateway'],
    'startGateway',
  )
}

export interface MockUpstream {
  url: string
  close(): Promise<void>
}

/** The gateway's built-in mock upstream (src/gateway/mock/server.ts). */
export async function loadMockUpstream(): Promise<
  Loaded<(options: { port?: number }) => Promise<MockUpstream>>
> {
  return pick(await importFirst(['gateway/mock/server.js', 'gateway/mock.js']), ['startMockUpstream'], 'mock')
}

export interface TokenEstimator {
  /** Prompt tokens of a chat completion request body, as the gateway estimates them before a call. */
  estimate(body: Record<string, unknown>): number
}

/** The gateway's prompt-token estimate for a chat request (src/gateway/dialects/openai-prompt.ts). */
export async function loadTokenEstimator(model: string): Promise<Loaded<TokenEstimator>> {
  const found = await importFirst(['gateway/tokens.js'])
  if (typeof found === 'string') return { ok: false, reason: found }
  const prompt = await importFirst(['gateway/dialects/openai-prompt.js', 'gateway/tokens.js'])
  if (typeof prompt === 'string') return { ok: false, reason: prompt }
  const { encoderFor, encodingForModel } = found.mod as {
    encoderFor?: (encoding: string) => Promise<unknown>
    encodingForModel?: (model: string) => string
  }
  const { chatPromptTokens } = prompt.mod as {
    chatPromptTokens?: (encoder: unknown, body: Record<string, unknown>) => number
  }
  if (
    typeof encoderFor !== 'function' ||
    typeof encodingForModel !== 'function' ||
    typeof chatPromptTokens !== 'function'
  ) {
    return { ok: false, reason: `${found.from} lacks encoderFor / encodingForModel / chatPromptTokens` }
  }
  const encoder = await encoderFor(encodingForModel(model))
  return {
    ok: true,
    value: { estimate: (body) => chatPromptTokens(encoder, body) },
    from: `${prompt.from} chatPromptTokens`,
  }
}
