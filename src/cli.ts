#!/usr/bin/env node
/**
 * sluice's command line: serve the gateway, check a config, create keys, inspect or unblock a
 * subject in the store, summarise the usage ledger, run the mock upstream alone.
 */
import { readFileSync, realpathSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { ConfigError, loadConfig } from './gateway/config/load.js'
import type { GatewayConfig } from './gateway/config/schema.js'
import { formatDuration, parseDuration } from './gateway/config/values.js'
import { inspectTable, usageTable } from './gateway/format.js'
import { sluiceOptions } from './gateway/http-options.js'
import { checkConfig, startGateway } from './gateway/index.js'
import { type GroupBy, type LedgerRecord, readLedger, summarize } from './gateway/ledger.js'
import { startMockUpstream } from './gateway/mock/server.js'
import { outagePolicy } from './gateway/store.js'
import { gatewayTiers } from './gateway/tiers.js'
import { generateApiKey, hashApiKey, Sluice } from './http/index.js'
import { BlockedKeyCache } from './store/blocked-cache.js'
import { RedisInvalidationBus } from './store/redis/invalidation.js'
import { RedisStore } from './store/redis/store.js'

export interface CliIo {
  out(text: string): void
  err(text: string): void
  env: Record<string, string | undefined>
  cwd: string
}

const defaultIo: CliIo = {
  out: (t) => process.stdout.write(`${t}\n`),
  err: (t) => process.stderr.write(`${t}\n`),
  env: process.env,
  cwd: process.cwd(),
}

const HELP = `sluice — rate limits for AI APIs

Usage:
  sluice serve [--config sluice.yaml] [--port 8787] [--host 127.0.0.1]
  sluice check-config [--config sluice.yaml]
  sluice keys create --tier <tier> --name <name> [--id <id>] [--config sluice.yaml]
  sluice inspect <subject> [--config sluice.yaml] [--json]
  sluice unblock <subject> [--config sluice.yaml]
  sluice usage [--since 1h] [--by subject|tier|model|route|outcome] [--ledger path] [--json]
  sluice mock [--port 0] [--latency 0ms] [--tokens-per-second 0]

A subject is what limits count: key:<key id>, user:<user id> or ip:<address or /64>.
The config is read from --config, $SLUICE_CONFIG, or ./sluice.yaml; environment variables
(SLUICE_PORT, SLUICE_REDIS_URL, OPENAI_API_KEY, …) override it. See docs/gateway.md.`

/** Thrown for a usage mistake: printed with a hint, exit code 2. */
class UsageError extends Error {}

function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      version?: string
    }
    return pkg.version ?? 'unknown'
  } catch {
    return 'unknown'
  }
}

function configFrom(
  path: string | undefined,
  io: CliIo,
): { config: GatewayConfig; path: string | undefined } {
  const options: { path?: string; env: CliIo['env']; cwd: string } = { env: io.env, cwd: io.cwd }
  if (path !== undefined) options.path = path
  return loadConfig(options)
}

function redactUrl(url: string): string {
  try {
    const u = new URL(url)
    if (u.password) u.password = '***'
    return u.toString()
  } catch {
    return url
  }
}

/** Where the config keeps its counts, for people (passwords hidden). */
function describeStore(config: GatewayConfig): string {
  const store = config.store
  if (store.type !== 'redis') return 'in memory (this process only)'
  const where =
    store.nodes !== undefined
      ? `Redis Cluster ${store.nodes.map(redactUrl).join(', ')}`
      : `redis ${redactUrl(store.url!)}`
  const policy = outagePolicy(config)!
  const modes = [...new Set(Object.values(policy.tiers))]
  const failModes =
    modes.length === 1
      ? `failMode ${modes[0]}`
      : `failMode ${Object.entries(policy.tiers)
          .map(([t, m]) => `${t}=${m}`)
          .join(' ')}`
  return `${where} (deadline ${policy.timeoutMs}ms, ${failModes}, instances ${policy.instances})`
}

/**
 * A Sluice over the config's Redis store, for commands that read or change a running gateway's state.
 * With `invalidate`, what it gives back (an unblock) is also announced to the running gateways, so
 * that their blocked-key caches forget the subject at once instead of after maxAge.
 */
async function sharedState(
  config: GatewayConfig,
  options: { invalidate?: boolean } = {},
): Promise<{ sluice: Sluice; close(): Promise<void> }> {
  if (config.store.type !== 'redis') {
    throw new UsageError(
      'this command reads the store, and the config uses the in-memory store, which lives inside the `sluice serve` process. ' +
        'Point the gateway and this command at Redis (store: { type: redis, url: … } or SLUICE_REDIS_URL).',
    )
  }
  const { nodes, url } = config.store
  const store = new RedisStore(nodes !== undefined ? { nodes } : { url: url! })
  const where = nodes !== undefined ? nodes.map(redactUrl).join(', ') : redactUrl(url!)
  const deadline = Date.now() + 5000
  for (;;) {
    try {
      await store.ping()
      break
    } catch (error) {
      if (Date.now() > deadline) {
        await store.close()
        throw new Error(`cannot reach Redis at ${where}: ${(error as Error).message}`)
      }
      await new Promise((r) => setTimeout(r, 100))
    }
  }
  if (!options.invalidate || config.store.blockedCache === false) {
    const sluice = new Sluice(sluiceOptions(config, { store, logger: false }))
    return { sluice, close: () => store.close() }
  }
  const cache = new BlockedKeyCache()
  const bus = new RedisInvalidationBus({ cache, client: store.client, channel: `${config.prefix}invalidate` })
  const sluice = new Sluice(sluiceOptions(config, { store: cache.wrap(store), logger: false }))
  return {
    sluice,
    close: async () => {
      await bus.close() // publishes what is pending
      await store.close()
    },
  }
}

const SUBJECT = /^(ip|user|key):\S+$/

function subjectArg(positionals: string[], command: string): string {
  const subject = positionals[1]
  if (subject === undefined)
    throw new UsageError(`${command} needs a subject, e.g. sluice ${command} key:ci-bot`)
  if (!SUBJECT.test(subject)) {
    throw new UsageError(`subject must look like key:<id>, user:<id> or ip:<address>, got "${subject}"`)
  }
  return subject
}

async function serve(values: Record<string, unknown>, io: CliIo): Promise<number> {
  const { config, path } = configFrom(values.config as string | undefined, io)
  if (values.port !== undefined) {
    const port = Number(values.port)
    if (!Number.isInteger(port) || port < 0 || port > 65_535)
      throw new UsageError(`--port must be 0-65535, got ${values.port}`)
    config.port = port
  }
  if (values.host !== undefined) config.host = values.host as string
  const gateway = await startGateway(config, { env: io.env })
  const upstream = gateway.upstreams.get(config.defaultUpstream)!
  io.out(`sluice gateway listening on ${gateway.url} — OpenAI base URL: ${gateway.url}/v1`)
  io.out(`  config:   ${path ?? '(defaults)'}`)
  io.out(`  store:    ${describeStore(config)}`)
  io.out(
    `  upstream: ${upstream.name} (${upstream.config.type === 'mock' ? `built-in mock at ${upstream.baseUrl}` : upstream.baseUrl})`,
  )
  io.out(`  ledger:   ${config.ledger.path === false ? 'off' : config.ledger.path}`)
  if (config.metrics.enabled) io.out(`  metrics:  ${gateway.url}/metrics`)
  if (gateway.demoKey) {
    io.out(`  demo key: ${gateway.demoKey}  (service tier; valid while this process runs)`)
  }
  io.out(
    `try: curl ${gateway.url}/v1/chat/completions -H 'content-type: application/json' -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello"}]}'`,
  )
  return await new Promise<number>((resolve) => {
    let stopping = false
    const stop = (signal: string) => {
      if (stopping) {
        // A second signal: do not wait for the calls in flight (they are still settled).
        io.err(`${signal} again: cutting the calls in flight`)
        void gateway.close({ deadlineMs: 0 })
        return
      }
      stopping = true
      io.err(
        `${signal}: no new connections; ${gateway.inFlight} call(s) in flight may finish for up to ${formatDuration(config.shutdown.deadline)}, then they are cut and settled…`,
      )
      gateway.close().then(
        () => {
          io.err('stopped: every call settled, ledger flushed')
          resolve(0)
        },
        (error: unknown) => {
          io.err(`error while stopping: ${(error as Error).message}`)
          resolve(1)
        },
      )
    }
    process.on('SIGINT', () => stop('SIGINT'))
    process.on('SIGTERM', () => stop('SIGTERM'))
  })
}

function checkConfigCommand(values: Record<string, unknown>, io: CliIo): number {
  const { config, path } = configFrom(values.config as string | undefined, io)
  checkConfig(config)
  const tiers = gatewayTiers(config.tiers)
  io.out(`config OK: ${path ?? '(no file: defaults and environment)'}`)
  io.out(`  listen:    ${config.host}:${config.port}`)
  io.out(`  store:     ${config.store.type === 'redis' ? describeStore(config) : 'memory'}`)
  io.out(
    `  tiers:     ${Object.entries(tiers)
      .map(([n, t]) => `${n} (${t.scope}: ${Object.keys(t.limits).join(', ')})`)
      .join('; ')}`,
  )
  io.out(`  keys:      ${config.auth.keys.length}${config.auth.requireKey ? ' (required)' : ''}`)
  io.out(`  upstreams: ${Object.keys(config.upstreams).join(', ')} (default: ${config.defaultUpstream})`)
  return 0
}

function keysCommand(values: Record<string, unknown>, positionals: string[], io: CliIo): number {
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
  io.out(`API key for ${name} (shown once — store it now):`)
  io.out(`  ${key}`)
  io.out('')
  io.out('Add this line under auth.keys in sluice.yaml (it holds only the hash):')
  io.out(`  - { id: ${id}, name: ${JSON.stringify(name)}, tier: ${tier}, hash: ${hashApiKey(key)} }`)
  return 0
}

async function inspectCommand(
  values: Record<string, unknown>,
  positionals: string[],
  io: CliIo,
): Promise<number> {
  const subject = subjectArg(positionals, 'inspect')
  const { config } = configFrom(values.config as string | undefined, io)
  const state = await sharedState(config)
  try {
    const states = await state.sluice.inspect(subject)
    if (values.json) io.out(JSON.stringify(states, null, 2))
    else if (Object.keys(states).length === 0) io.out(`no tier counts ${subject.split(':')[0]} subjects`)
    else io.out(inspectTable(states))
    return 0
  } finally {
    await state.close()
  }
}

async function unblockCommand(
  values: Record<string, unknown>,
  positionals: string[],
  io: CliIo,
): Promise<number> {
  const subject = subjectArg(positionals, 'unblock')
  const { config } = configFrom(values.config as string | undefined, io)
  const state = await sharedState(config, { invalidate: true })
  try {
    await state.sluice.unblock(subject)
    io.out(`unblocked ${subject} in every tier (its strikes are forgotten too)`)
    return 0
  } finally {
    await state.close()
  }
}

const GROUPS: GroupBy[] = ['subject', 'tier', 'model', 'route', 'outcome']

async function usageCommand(values: Record<string, unknown>, io: CliIo): Promise<number> {
  let path = values.ledger as string | undefined
  if (path === undefined) {
    const { config } = configFrom(values.config as string | undefined, io)
    if (config.ledger.path === false)
      throw new UsageError('the ledger is off in this config; pass --ledger <path>')
    path = config.ledger.path
  }
  const sinceText = (values.since as string | undefined) ?? '24h'
  const sinceMs = sinceText === 'all' ? Number.POSITIVE_INFINITY : parseDuration(sinceText)
  if (sinceMs === undefined || !(sinceMs > 0)) {
    throw new UsageError(`--since must be a duration such as 30m, 1h, 7d, or "all", got "${sinceText}"`)
  }
  const by = ((values.by as string | undefined) ?? 'subject') as GroupBy
  if (!GROUPS.includes(by)) throw new UsageError(`--by must be one of ${GROUPS.join(', ')}, got "${by}"`)
  const since = Number.isFinite(sinceMs) ? new Date(Date.now() - sinceMs) : undefined
  const records: LedgerRecord[] = []
  for await (const r of readLedger(`${path}`, since)) records.push(r)
  const rows = summarize(records, by)
  if (values.json) {
    io.out(JSON.stringify({ since: since?.toISOString() ?? null, by, rows }, null, 2))
  } else if (rows.length === 0) {
    io.out(`no usage recorded${since ? ` since ${since.toISOString()}` : ''} in ${path}`)
  } else {
    io.out(`usage since ${since ? since.toISOString() : 'the start of the ledger'} (${path})`)
    io.out(usageTable(rows, by))
  }
  return 0
}

async function mockCommand(values: Record<string, unknown>, io: CliIo): Promise<number> {
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

/** Runs one command; returns the exit code. */
export async function main(argv: string[], io: CliIo = defaultIo): Promise<number> {
  let parsed: ReturnType<typeof parseArgs>
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        config: { type: 'string', short: 'c' },
        port: { type: 'string', short: 'p' },
        host: { type: 'string' },
        tier: { type: 'string' },
        name: { type: 'string' },
        id: { type: 'string' },
        since: { type: 'string' },
        by: { type: 'string' },
        ledger: { type: 'string' },
        json: { type: 'boolean' },
        latency: { type: 'string' },
        'tokens-per-second': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
    })
  } catch (error) {
    io.err(`${(error as Error).message}\n\n${HELP}`)
    return 2
  }
  const { values, positionals } = parsed
  const command = positionals[0]
  if (values.version) {
    io.out(version())
    return 0
  }
  if (values.help || command === undefined || command === 'help') {
    io.out(HELP)
    return command === undefined && !values.help ? 2 : 0
  }
  try {
    switch (command) {
      case 'serve':
        return await serve(values, io)
      case 'check-config':
        return checkConfigCommand(values, io)
      case 'keys':
        return keysCommand(values, positionals, io)
      case 'inspect':
        return await inspectCommand(values, positionals, io)
      case 'unblock':
        return await unblockCommand(values, positionals, io)
      case 'usage':
        return await usageCommand(values, io)
      case 'mock':
        return await mockCommand(values, io)
      default:
        io.err(`unknown command "${command}"\n\n${HELP}`)
        return 2
    }
  } catch (error) {
    if (error instanceof ConfigError) {
      io.err(error.message)
      return 1
    }
    if (error instanceof UsageError) {
      io.err(`sluice ${command}: ${error.message}`)
      return 2
    }
    io.err(`sluice ${command}: ${(error as Error).message}`)
    return 1
  }
}

function isEntryPoint(): boolean {
  const script = process.argv[1]
  if (script === undefined) return false
  try {
    return realpathSync(script) === fileURLToPath(import.meta.url)
  } catch {
    return false
  }
}

if (isEntryPoint()) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(`${(error as Error).stack ?? String(error)}\n`)
      process.exit(1)
    },
  )
}
