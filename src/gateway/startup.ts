/**
 * What `sluice serve` and `sluice check-config` check before they start: the demo key, the
 * environment the config relies on (upstream keys), and whether the ledger's path can be written.
 */
import { accessSync, constants, statSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { API_KEY_PREFIX, generateApiKey, hashApiKey, type KeyConfig } from '../http/index.js'
import { ConfigError } from './config/load.js'
import type { GatewayConfig } from './config/schema.js'

type Env = Record<string, string | undefined>

/** A key as `generateApiKey()` makes it: the prefix and 43 base64url characters (32 random bytes). */
const KEY_FORMAT = new RegExp(`^${API_KEY_PREFIX}([A-Za-z0-9_-]{43})$`)
/** 43 random base64url characters hold ~30 different ones; fewer than this is not random. */
const MIN_DISTINCT_CHARACTERS = 16

/**
 * Why a SLUICE_DEMO_KEY value is refused, or undefined. The demo key opens the service tier, and a
 * correct guess is answered even from an address locked out for failed guesses, so it must be as
 * strong as the keys `sluice keys create` makes: 32 random bytes, not a word.
 */
export function demoKeyProblem(key: string): string | undefined {
  const match = KEY_FORMAT.exec(key)
  const body = match?.[1]
  if (body === undefined) {
    return `expected a key as \`sluice keys create\` prints it (${API_KEY_PREFIX} and 43 letters, digits, "-" or "_"; ${key.length} characters given)`
  }
  // The canonical base64url of 32 bytes: the last character carries 4 bits, so some spellings are not.
  const canonical = Buffer.from(body, 'base64url').toString('base64url') === body
  if (!canonical || new Set(body).size < MIN_DISTINCT_CHARACTERS) {
    return 'this key does not look random: use one that `sluice keys create` printed'
  }
  return undefined
}

/** The demo key (service tier) when the config has no key and allows one; SLUICE_DEMO_KEY keeps it. */
export function demoKeyFor(
  config: GatewayConfig,
  env: Env,
): { key: string; entry: KeyConfig; fromEnv: boolean } | undefined {
  if (!config.auth.demoKey || config.auth.keys.length > 0) return undefined
  const given = env.SLUICE_DEMO_KEY?.trim()
  if (given !== undefined && given !== '') {
    const problem = demoKeyProblem(given)
    if (problem !== undefined) throw new ConfigError([`SLUICE_DEMO_KEY: ${problem}`])
  }
  const fromEnv = given !== undefined && given !== ''
  const key = fromEnv ? given : generateApiKey()
  return { key, entry: { hash: hashApiKey(key), tier: 'service', id: 'demo', name: 'demo' }, fromEnv }
}

/** Upstream names the config can route to: the default and every models entry's. */
export function usedUpstreams(config: GatewayConfig): string[] {
  const names = new Set([config.defaultUpstream])
  for (const model of Object.values(config.models))
    if (model.upstream !== undefined) names.add(model.upstream)
  for (const list of Object.values(config.deployments)) for (const d of list) names.add(d.upstream)
  return [...names]
}

/** The model patterns routed to an upstream ("gpt-*"), or "every other model" for the default. */
export function patternsOf(config: GatewayConfig, upstream: string): string[] {
  const patterns = Object.entries(config.models)
    .filter(([, m]) => m.upstream === upstream)
    .map(([p]) => p)
  for (const [model, list] of Object.entries(config.deployments)) {
    if (list.some((d) => d.upstream === upstream)) patterns.push(`${model} (deployment)`)
  }
  if (upstream === config.defaultUpstream) patterns.push('every other model')
  return patterns
}

/**
 * Things that work but probably not as meant: an upstream the config routes to whose key variable
 * is unset, a SLUICE_DEMO_KEY that is ignored. Throws ConfigError for a SLUICE_DEMO_KEY too weak
 * to use.
 */
export function startupWarnings(config: GatewayConfig, env: Env): string[] {
  const warnings: string[] = []
  demoKeyFor(config, env)
  const demo = env.SLUICE_DEMO_KEY?.trim()
  if (demo !== undefined && demo !== '' && (!config.auth.demoKey || config.auth.keys.length > 0)) {
    warnings.push(
      `SLUICE_DEMO_KEY is set but ignored: ${config.auth.keys.length > 0 ? 'auth.keys lists keys' : 'auth.demoKey is false'}, so no demo key is made`,
    )
  }
  for (const name of usedUpstreams(config)) {
    const upstream = config.upstreams[name]
    if (upstream === undefined || upstream.type === 'mock') continue
    const key = env[upstream.apiKeyEnv]
    if (key === undefined || key.trim() === '') {
      warnings.push(
        `upstreams.${name}: $${upstream.apiKeyEnv} is not set, so calls routed to "${name}" (${patternsOf(config, name).join(', ')}) are sent without an API key`,
      )
    }
  }
  return warnings
}

/**
 * Why the ledger's path cannot be written, or undefined — without creating anything (for
 * check-config; `sluice serve` opens the file at start-up and fails there).
 */
export function ledgerPathProblem(path: string): string | undefined {
  const where = resolve(path)
  let current = where
  for (;;) {
    let isDirectory: boolean
    try {
      isDirectory = statSync(current).isDirectory()
    } catch {
      const parent = dirname(current)
      if (parent === current) return `cannot create ${where}: no part of the path exists`
      current = parent
      continue
    }
    if (current === where && isDirectory)
      return `cannot write ${where}: it is a directory (give the path of a file)`
    if (current !== where && !isDirectory)
      return `cannot create ${where}: ${current} is a file, not a directory`
    try {
      accessSync(current, constants.W_OK)
    } catch {
      return `cannot write ${where}: permission denied on ${current}`
    }
    return undefined
  }
}
