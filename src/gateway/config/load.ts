import { existsSync, readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { parseDocument } from 'yaml'
import type { z } from 'zod'
import { describe } from '../../core/errors.js'
import { isRecord } from '../is-record.js'
import { DEFAULT_TIER_NAMES, emptyTiers, gatewayTiers } from '../tiers.js'
import { deploymentIssues } from './deployments-schema.js'
import { configSchema, type GatewayConfig, type GatewayConfigInput, type UpstreamConfig } from './schema.js'

/** A config that cannot be used; `issues` name each bad path ("tiers.free.limits.tokens.capacity: …"). */
export class ConfigError extends Error {
  override name = 'ConfigError'
  constructor(
    readonly issues: string[],
    readonly source?: string,
  ) {
    super(`${source ? `${source}: ` : ''}invalid sluice config:\n${issues.map((i) => `  - ${i}`).join('\n')}`)
  }
}

/** The upstreams every config has unless it redefines the name. */
export const BUILTIN_UPSTREAMS: Record<string, UpstreamConfig> = {
  mock: {
    type: 'mock',
    latency: 0,
    tokensPerSecond: 0,
    completionTokens: { min: 16, max: 96 },
    embeddingDimensions: 256,
    connections: 128,
    connectTimeout: 10_000,
    headersTimeout: 300_000,
    bodyTimeout: 300_000,
  },
  openai: {
    type: 'openai',
    baseUrl: 'https://api.openai.com/v1',
    apiKeyEnv: 'OPENAI_API_KEY',
    headers: {},
    injectStreamUsage: true,
    connections: 128,
    connectTimeout: 10_000,
    headersTimeout: 300_000,
    bodyTimeout: 300_000,
  },
  anthropic: {
    type: 'anthropic',
    baseUrl: 'https://api.anthropic.com/v1',
    apiKeyEnv: 'ANTHROPIC_API_KEY',
    headers: {},
    connections: 128,
    connectTimeout: 10_000,
    headersTimeout: 300_000,
    bodyTimeout: 300_000,
  },
}

type Env = Record<string, string | undefined>

/** Environment variables that override the file, and where each one lands. */
export const ENV_OVERRIDES: ReadonlyArray<{ name: string; path: string; help: string }> = [
  { name: 'SLUICE_HOST', path: 'host', help: 'address to listen on' },
  { name: 'SLUICE_PORT', path: 'port', help: 'port to listen on' },
  { name: 'SLUICE_REDIS_URL', path: 'store.url', help: 'use Redis at this URL as the store' },
  { name: 'SLUICE_PREFIX', path: 'prefix', help: 'prefix of every store key' },
  { name: 'SLUICE_REQUIRE_KEY', path: 'auth.requireKey', help: 'true: refuse requests without an API key' },
  { name: 'SLUICE_UPSTREAM', path: 'defaultUpstream', help: 'default upstream (mock, openai, …)' },
  {
    name: 'SLUICE_UPSTREAM_URL',
    path: 'upstreams.openai.baseUrl',
    help: 'base URL of the "openai" upstream',
  },
  { name: 'SLUICE_LEDGER', path: 'ledger.path', help: 'usage ledger file, or "off"' },
  { name: 'SLUICE_LOG_LEVEL', path: 'log.level', help: 'fatal, error, warn, info, debug, trace, silent' },
  {
    name: 'SLUICE_DATABASE_URL',
    path: 'database.url',
    help: 'control-plane database: postgres://… or a SQLite file',
  },
]

function child(parent: Record<string, unknown>, key: string): Record<string, unknown> {
  const existing = parent[key]
  if (isRecord(existing)) return existing
  const created: Record<string, unknown> = {}
  parent[key] = created
  return created
}

/** Applies environment overrides to a raw config object; returns path → variable for error messages. */
function applyEnv(raw: Record<string, unknown>, env: Env): Map<string, string> {
  const origins = new Map<string, string>()
  const set = (path: string, value: unknown, name: string) => {
    const parts = path.split('.')
    let target = raw
    for (const part of parts.slice(0, -1)) target = child(target, part)
    target[parts.at(-1)!] = value
    origins.set(path, name)
  }
  const text = (name: string) => {
    const v = env[name]
    return v === undefined || v.trim() === '' ? undefined : v.trim()
  }
  const host = text('SLUICE_HOST')
  if (host !== undefined) set('host', host, 'SLUICE_HOST')
  const port = text('SLUICE_PORT')
  if (port !== undefined) set('port', /^\d+$/.test(port) ? Number(port) : port, 'SLUICE_PORT')
  const redis = text('SLUICE_REDIS_URL')
  if (redis !== undefined) {
    // Keep the file's outage options when it already uses Redis; only the address changes.
    const kept = isRecord(raw.store) && raw.store.type === 'redis' ? { ...raw.store } : {}
    delete kept.nodes
    raw.store = { ...kept, type: 'redis', url: redis }
    origins.set('store.url', 'SLUICE_REDIS_URL')
    origins.set('store', 'SLUICE_REDIS_URL')
  }
  const prefix = text('SLUICE_PREFIX')
  if (prefix !== undefined) set('prefix', prefix, 'SLUICE_PREFIX')
  const requireKey = text('SLUICE_REQUIRE_KEY')
  if (requireKey !== undefined) {
    const flag = /^(1|true|yes|on)$/i.test(requireKey)
      ? true
      : /^(0|false|no|off)$/i.test(requireKey)
        ? false
        : requireKey
    set('auth.requireKey', flag, 'SLUICE_REQUIRE_KEY')
  }
  const upstream = text('SLUICE_UPSTREAM')
  if (upstream !== undefined) set('defaultUpstream', upstream, 'SLUICE_UPSTREAM')
  const upstreamUrl = text('SLUICE_UPSTREAM_URL')
  if (upstreamUrl !== undefined) {
    const upstreams = child(raw, 'upstreams')
    const openai = isRecord(upstreams.openai) ? upstreams.openai : { ...BUILTIN_UPSTREAMS.openai }
    upstreams.openai = { ...openai, baseUrl: upstreamUrl }
    origins.set('upstreams.openai.baseUrl', 'SLUICE_UPSTREAM_URL')
  }
  const ledger = text('SLUICE_LEDGER')
  if (ledger !== undefined)
    set('ledger.path', /^(off|false|none)$/i.test(ledger) ? false : ledger, 'SLUICE_LEDGER')
  const database = text('SLUICE_DATABASE_URL')
  if (database !== undefined) {
    if (raw.database === false) raw.database = {}
    set('database.url', database, 'SLUICE_DATABASE_URL')
  }
  const level = text('SLUICE_LOG_LEVEL')
  if (level !== undefined) set('log.level', level, 'SLUICE_LOG_LEVEL')
  return origins
}

/**
 * YAML turns a key whose value is all commented out (`keys:` with nothing under it) into null:
 * treat that as "not set". Inside `limits`, null keeps its meaning (remove a default limit).
 */
function dropNulls(value: unknown, parentKey?: string): unknown {
  if (Array.isArray(value)) return value.map((v) => dropNulls(v))
  if (!isRecord(value)) return value
  const out: Record<string, unknown> = {}
  for (const [key, v] of Object.entries(value)) {
    if (v === null && parentKey !== 'limits') continue
    out[key] = dropNulls(v, key)
  }
  return out
}

function pathOf(path: ReadonlyArray<PropertyKey>): string {
  return path.length === 0 ? '(top level)' : path.map(String).join('.')
}

type Issue = z.ZodError['issues'][number]

/**
 * For "this or that" options (`blockedCache: false | { maxAge }`) zod reports a bare "Invalid
 * input" at the option when a nested field is wrong. When exactly one alternative matched the
 * value's shape (all its issues lie inside the value), its issues say what is wrong: use them.
 */
function unionIssues(issue: Issue): Issue[] {
  if (issue.code !== 'invalid_union' || !('errors' in issue) || !Array.isArray(issue.errors)) return [issue]
  const matched = issue.errors.filter((branch) => branch.length > 0 && branch.every((i) => i.path.length > 0))
  if (matched.length !== 1) return [issue]
  return matched[0]!.flatMap((i) => unionIssues({ ...i, path: [...issue.path, ...i.path] } as Issue))
}

function formatIssues(error: z.ZodError, origins: Map<string, string>): string[] {
  return error.issues.flatMap(unionIssues).map((issue) => {
    let path = pathOf(issue.path)
    let message = issue.message
    if (issue.code === 'unrecognized_keys') {
      const where = issue.path.length === 0 ? '' : `${path}.`
      return `${issue.keys.map((k) => `${where}${k}`).join(', ')}: unknown option`
    }
    if (issue.code === 'invalid_union' && 'note' in issue && issue.note === 'No matching discriminator') {
      message = `${message.replace('Invalid discriminator value. ', '')}`
      path = pathOf(issue.path)
    }
    const origin = origins.get(path)
    return `${path}${origin ? ` (from ${origin})` : ''}: ${message}`
  })
}

/** Checks that need the whole config: names that must refer to something defined elsewhere. */
function crossCheck(config: GatewayConfig): string[] {
  const issues: string[] = []
  const upstreams = config.upstreams
  if (!(config.defaultUpstream in upstreams)) {
    issues.push(
      `defaultUpstream: no upstream named ${describe(config.defaultUpstream)} (have: ${Object.keys(upstreams).join(', ')})`,
    )
  }
  for (const [pattern, model] of Object.entries(config.models)) {
    if (model.upstream !== undefined && !(model.upstream in upstreams)) {
      issues.push(
        `models.${pattern}.upstream: no upstream named ${describe(model.upstream)} (have: ${Object.keys(upstreams).join(', ')})`,
      )
    }
  }
  issues.push(...deploymentIssues(config))
  const tierNames = new Set([...DEFAULT_TIER_NAMES, ...Object.keys(config.tiers)])
  for (const [name, tier] of Object.entries(config.tiers)) {
    if (!DEFAULT_TIER_NAMES.includes(name) && tier.scope === undefined) {
      issues.push(`tiers.${name}.scope: a new tier needs a scope (ip, user or key)`)
    }
  }
  try {
    for (const name of emptyTiers(gatewayTiers(config.tiers))) {
      issues.push(`tiers.${name}.limits: a tier needs at least one limit`)
    }
  } catch (error) {
    issues.push(`tiers: ${(error as Error).message}`)
  }
  const seen = new Map<string, number>()
  config.auth.keys.forEach((key, i) => {
    if (!tierNames.has(key.tier)) {
      issues.push(
        `auth.keys.${i}.tier: no tier named ${describe(key.tier)} (have: ${[...tierNames].join(', ')})`,
      )
    }
    const before = seen.get(key.hash)
    if (before !== undefined) issues.push(`auth.keys.${i}.hash: the same key as auth.keys.${before}`)
    seen.set(key.hash, i)
  })
  return issues
}

/**
 * Validates a config object (as parsed from YAML, or built in code) and fills in defaults.
 * Throws ConfigError naming every bad path.
 */
export function parseConfig(input: unknown, options: { env?: Env; source?: string } = {}): GatewayConfig {
  if (input !== undefined && input !== null && !isRecord(input)) {
    throw new ConfigError(
      [`(top level): expected a mapping of options, got ${describe(input)}`],
      options.source,
    )
  }
  const raw = dropNulls(structuredClone(isRecord(input) ? input : {})) as Record<string, unknown>
  const origins = options.env ? applyEnv(raw, options.env) : new Map<string, string>()
  const result = configSchema.safeParse(raw)
  if (!result.success) throw new ConfigError(formatIssues(result.error, origins), options.source)
  const config = result.data
  config.upstreams = { ...BUILTIN_UPSTREAMS, ...config.upstreams }
  const issues = crossCheck(config)
  if (issues.length > 0) throw new ConfigError(issues, options.source)
  return config
}

export interface LoadedConfig {
  config: GatewayConfig
  /** The file read, if any. */
  path: string | undefined
}

/**
 * Reads sluice.yaml (the given path, else $SLUICE_CONFIG, else ./sluice.yaml when it exists, else
 * defaults only), applies environment overrides and validates.
 */
export function loadConfig(options: { path?: string; env?: Env; cwd?: string } = {}): LoadedConfig {
  const env = options.env ?? process.env
  const cwd = options.cwd ?? process.cwd()
  const explicit = options.path ?? env.SLUICE_CONFIG
  let path: string | undefined
  if (explicit !== undefined && explicit !== '') {
    path = resolve(cwd, explicit)
    if (!existsSync(path)) throw new ConfigError([`config file not found: ${path}`])
  } else if (existsSync(resolve(cwd, 'sluice.yaml'))) {
    path = resolve(cwd, 'sluice.yaml')
  }
  let input: unknown
  if (path !== undefined) {
    const doc = parseDocument(readFileSync(path, 'utf8'), { prettyErrors: true })
    if (doc.errors.length > 0) {
      throw new ConfigError(
        doc.errors.map((e) => e.message.split('\n')[0]!),
        path,
      )
    }
    input = doc.toJS()
  }
  return { config: parseConfig(input, { env, source: path }), path }
}

export type { GatewayConfig, GatewayConfigInput }
