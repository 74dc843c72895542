/** The small commands: check-config, keys create, mock. */
import { resolve } from 'node:path'
import { parseDuration } from '../gateway/config/values.js'
import { escapeControls } from '../gateway/format.js'
import { checkConfig } from '../gateway/index.js'
import { startMockUpstream } from '../gateway/mock/server.js'
import { ledgerPathProblem, startupWarnings } from '../gateway/startup.js'
import { gatewayTiers } from '../gateway/tiers.js'
import { generateApiKey, hashApiKey } from '../http/index.js'
import { type CliIo, ConfigError, configFrom, UsageError } from './io.js'
import { describeStore } from './state.js'

/** Validates the config as `sluice serve` would; warnings make it fail under --strict. */
export function checkConfigCommand(values: Record<string, unknown>, io: CliIo): number {
  const { config, path } = configFrom(values.config as string | undefined, io)
  checkConfig(config)
  const warnings = startupWarnings(config, io.env)
  if (config.ledger.path !== false) {
    const problem = ledgerPathProblem(resolve(io.cwd, config.ledger.path))
    if (problem !== undefined) throw new ConfigError([`ledger.path: ${problem}`], path)
  }
  const tiers = gatewayTiers(config.tiers)
  const say = (text: string) => io.out(escapeControls(text))
  say(
    `config ${warnings.length > 0 ? 'valid, with warnings' : 'OK'}: ${path ?? '(no file: defaults and environment)'}`,
  )
  say(`  listen:    ${config.host}:${config.port}`)
  say(`  store:     ${config.store.type === 'redis' ? describeStore(config) : 'memory'}`)
  say(
    `  tiers:     ${Object.entries(tiers)
      .map(([n, t]) => `${n} (${t.scope}: ${Object.keys(t.limits).join(', ')})`)
      .join('; ')}`,
  )
  say(`  keys:      ${config.auth.keys.length}${config.auth.requireKey ? ' (required)' : ''}`)
  say(`  upstreams: ${Object.keys(config.upstreams).join(', ')} (default: ${config.defaultUpstream})`)
  for (const warning of warnings) io.err(escapeControls(`warning: ${warning}`))
  if (warnings.length > 0 && values.strict) {
    io.err(`--strict: ${warnings.length} warning${warnings.length === 1 ? '' : 's'} count as errors`)
    return 1
  }
  return 0
}

export function keysCommand(values: Record<string, unknown>, positionals: string[], io: CliIo): number {
  if (positionals[1] !== 'create')
    throw new UsageError('usage: sluice keys create --tier <tier> --name <name>')
  const tier = values.tier as string | undefined
  const name = values.name as string | undefined
  if (!tier) throw new UsageError('keys create needs --tier (e.g. --tier service)')
  if (!name) throw new UsageError('keys create needs --name (who the key is for, e.g. --name ci-bot)')
  const { config } = configFrom(values.config as string | undefined, io)
  const tiers = gatewayTiers(config.tiers)
  if (!(tier in tiers))
    throw new UsageError(`no tier named "${tier}" (have: ${Object.keys(tiers).join(', ')})`)
  const id =
    (values.id as string | undefined) ??
    name
      .toLowerCase()
      .replace(/[^a-z0-9_.-]+/g, '-')
      .replace(/^[-.]+|[-.]+$/g, '')
      .slice(0, 64)
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(id))
    throw new UsageError(`--id must be 1-64 letters, digits, "_", "-" or ".", got "${id}"`)
  const key = generateApiKey()
  io.out(`API key for ${escapeControls(name)} (shown once — store it now):`)
  io.out(`  ${key}`)
  io.out('')
  io.out('Add this line under auth.keys in sluice.yaml (it holds only the hash):')
  io.out(`  - { id: ${id}, name: ${JSON.stringify(name)}, tier: ${tier}, hash: ${hashApiKey(key)} }`)
  return 0
}

export async function mockCommand(values: Record<string, unknown>, io: CliIo): Promise<number> {
  const latency = parseDuration((values.latency as string | undefined) ?? '0ms')
  const tps = Number((values['tokens-per-second'] as string | undefined) ?? 0)
  const port = Number((values.port as string | undefined) ?? 0)
  if (latency === undefined || latency < 0) throw new UsageError('--latency must be a duration such as 200ms')
  if (!Number.isFinite(tps) || tps < 0) throw new UsageError('--tokens-per-second must be a number ≥ 0')
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new UsageError('--port must be 0-65535')
  const mock = await startMockUpstream({ port, latencyMs: latency, tokensPerSecond: tps })
  io.out(`mock upstream at ${mock.url} (x-mock-fail: 500 | timeout | cut:N | stall:N)`)
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve)
    process.once('SIGTERM', resolve)
  })
  await mock.close()
  return 0
}
