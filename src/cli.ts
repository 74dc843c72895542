#!/usr/bin/env node
import { readFileSync, realpathSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { checkConfigCommand, mockCommand, keysCommand as yamlKeysCommand } from './cli/commands.js'
import { keysCommand, migrateCommand, teamsCommand } from './cli/control.js'
import { type CliIo, ConfigError, processIo, UsageError } from './cli/io.js'
/**
 * sluice's command line: serve the gateway, check a config, create keys, inspect or unblock a
 * subject in the store, summarise the usage ledger, run the mock upstream alone.
 */
import { queuesCommand } from './cli/queues.js'
import { serve } from './cli/serve.js'
import { inspectCommand, unblockCommand } from './cli/subjects.js'
import { NoLedgerError, usageCommand } from './cli/usage.js'
import { escapeControls } from './gateway/format.js'

export type { CliIo } from './cli/io.js'

const HELP = `sluice — rate limits for AI APIs

Usage:
  sluice serve [--config sluice.yaml] [--port 8787] [--host 127.0.0.1]
  sluice check-config [--config sluice.yaml] [--strict]
  sluice migrate [--config sluice.yaml]
  sluice keys create --tier <tier> --name <name> [--team <id>] [--user <id>] [--expires <time>]
                     [--limits <json>] [--queue <json>] [--budgets <json>] [--metadata <json>] [--json]
  sluice keys create --yaml --tier <tier> --name <name> [--id <id>]   (a line for sluice.yaml instead)
  sluice keys list [--team <id>] [--tier <tier>] [--status active|revoked|expired] [--search <text>]
                   [--source database|sluice.yaml] [--json]
  sluice keys show|revoke <id>
  sluice keys update <id> [--tier …] [--name …] [--team …|none] [--expires …|none] [--limits …] [--queue …|none] [--budgets …]
  sluice keys rotate <id> [--grace 1h]
  sluice teams create <id> [--name <name>] [--limits <json>] [--budgets <json>]
  sluice teams list | show <id> | update <id> [...] | delete <id> [--force]
  sluice inspect <subject> [--config sluice.yaml] [--json]
  sluice unblock <subject> [--config sluice.yaml]
  sluice queues [--config sluice.yaml] [--json]   (requests waiting in the tiers' queues now)
  sluice usage [--since 1h] [--by key|team|user|model|tier|day|outcome|reason] [--json]
  sluice usage --ledger <usage.jsonl> [--since 1h] [--by subject|tier|model|route|outcome] [--json]
  sluice mock [--port 0] [--latency 0ms] [--tokens-per-second 0]

A subject is what limits count: key:<key id>, user:<user id> or ip:<address or /64>.
keys, teams and usage work on the control database: .sluice/sluice.db, or database.url /
SLUICE_DATABASE_URL (postgres://…) — the one \`sluice serve\` uses. See docs/admin.md.
The config is read from --config, $SLUICE_CONFIG, or ./sluice.yaml; environment variables
(SLUICE_PORT, SLUICE_REDIS_URL, OPENAI_API_KEY, …) override it. See docs/gateway.md.`

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

/** Runs one command; returns the exit code. */
export async function main(argv: string[], io: CliIo = processIo()): Promise<number> {
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
        yaml: { type: 'boolean' },
        team: { type: 'string' },
        user: { type: 'string' },
        expires: { type: 'string' },
        limits: { type: 'string' },
        queue: { type: 'string' },
        budgets: { type: 'string' },
        metadata: { type: 'string' },
        grace: { type: 'string' },
        status: { type: 'string' },
        search: { type: 'string' },
        source: { type: 'string' },
        limit: { type: 'string' },
        force: { type: 'boolean' },
        strict: { type: 'boolean' },
        latency: { type: 'string' },
        'tokens-per-second': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
    })
  } catch (error) {
    io.err(`${escapeControls((error as Error).message)}\n\n${HELP}`)
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
        return values.yaml
          ? yamlKeysCommand(values, positionals, io)
          : await keysCommand(values, positionals, io)
      case 'teams':
        return await teamsCommand(values, positionals, io)
      case 'migrate':
        return await migrateCommand(values, io)
      case 'inspect':
        return await inspectCommand(values, positionals, io)
      case 'unblock':
        return await unblockCommand(values, positionals, io)
      case 'queues':
        return await queuesCommand(values, io)
      case 'usage':
        return await usageCommand(values, io)
      case 'mock':
        return await mockCommand(values, io)
      default:
        io.err(`unknown command "${escapeControls(command)}"\n\n${HELP}`)
        return 2
    }
  } catch (error) {
    // Messages may quote what was typed or read (a subject, a file's content): never raw controls.
    const say = (text: string) => io.err(escapeControls(text, { keepNewlines: true }))
    if (error instanceof ConfigError) {
      say(error.message)
      return 1
    }
    if (error instanceof UsageError) {
      say(`sluice ${command}: ${error.message}`)
      return 2
    }
    if (error instanceof NoLedgerError) {
      say(`sluice ${command}: ${error.message}`)
      return 1
    }
    say(`sluice ${command}: ${(error as Error).message}`)
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
