/**
 * The control plane from the command line: `sluice migrate`, `sluice keys …`, `sluice teams …`
 * and `sluice usage` over the database. Every change goes through AdminService, the code the admin
 * API runs, so input is checked the same way and the audit log names the operator (`cli:<user>`).
 */
import { existsSync } from 'node:fs'
import { userInfo } from 'node:os'
import { isAbsolute, resolve } from 'node:path'
import { USAGE_GROUPS } from '../control/admin/schemas/usage-audit.js'
import { type Actor, AdminService } from '../control/admin/service.js'
import { type Control, openControl } from '../control/control.js'
import { DEFAULT_SQLITE_PATH, isPostgresUrl, openDatabase, redactUrl } from '../control/db.js'
import { ConflictError, ControlInputError, NotFoundError } from '../control/errors.js'
import { migrateToLatest } from '../control/migrations/index.js'
import type { GatewayConfig } from '../gateway/config/schema.js'
import { escapeControls } from '../gateway/format.js'
import { gatewayTiers } from '../gateway/tiers.js'
import { keyIdOf } from '../http/keys.js'
import { type CliIo, ConfigError, configFrom, UsageError } from './io.js'

/** The control database's URL for a config, a SQLite path made absolute against `cwd`; undefined: off. */
export function databaseUrlOf(config: GatewayConfig, cwd: string): string | undefined {
  if (config.database === false) return undefined
  const url = config.database?.url ?? DEFAULT_SQLITE_PATH
  if (isPostgresUrl(url) || url === ':memory:' || url.startsWith('sqlite:') || isAbsolute(url)) return url
  return resolve(cwd, url)
}

/** Whether `sluice usage` should read the database: one is configured, or the default file exists. */
export function usesDatabase(config: GatewayConfig, cwd: string): boolean {
  if (config.database === false) return false
  if (config.database !== undefined) return true
  return existsSync(resolve(cwd, DEFAULT_SQLITE_PATH))
}

function actor(): Actor {
  let name = 'unknown'
  try {
    name = userInfo().username || 'unknown'
  } catch {
    // No passwd entry (a container's arbitrary uid): the audit log says so.
  }
  return { actor: `cli:${name.replace(/[^A-Za-z0-9._@+-]/g, '_').slice(0, 64)}` }
}

function oneLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0]!
}

/** Opens the config's database, runs `work` with the admin service over it, closes it. */
async function withService<T>(
  values: Record<string, unknown>,
  io: CliIo,
  work: (service: AdminService, config: GatewayConfig) => Promise<T>,
): Promise<T> {
  const { config, path } = configFrom(values.config as string | undefined, io)
  const url = databaseUrlOf(config, io.cwd)
  if (url === undefined) {
    throw new UsageError(
      'the control plane is off in this config (database: false); set database.url or SLUICE_DATABASE_URL',
    )
  }
  let control: Control
  try {
    control = await openControl({ url, migrate: config.database ? config.database.migrate : true })
  } catch (error) {
    throw new ConfigError([`database: cannot open ${redactUrl(url)}: ${oneLine(error)}`], path)
  }
  const service = new AdminService({
    control,
    tiers: Object.keys(gatewayTiers(config.tiers)),
    configKeys: () => config.auth.keys.map((k) => ({ ...k, id: k.id ?? keyIdOf(k.hash) })),
  })
  try {
    return await work(service, config)
  } catch (error) {
    if (error instanceof ControlInputError) throw new UsageError(error.message)
    if (error instanceof NotFoundError || error instanceof ConflictError) throw new UsageError(error.message)
    throw error
  } finally {
    await control.close()
  }
}

/** `sluice migrate`: brings the control database's schema to this version. */
export async function migrateCommand(values: Record<string, unknown>, io: CliIo): Promise<number> {
  const { config, path } = configFrom(values.config as string | undefined, io)
  const url = databaseUrlOf(config, io.cwd)
  if (url === undefined) throw new UsageError('the control plane is off in this config (database: false)')
  let database: ReturnType<typeof openDatabase>
  try {
    database = openDatabase({ url })
  } catch (error) {
    throw new ConfigError([`database: cannot open ${redactUrl(url)}: ${oneLine(error)}`], path)
  }
  try {
    const report = await migrateToLatest(database)
    io.out(escapeControls(`database ${database.label}: ${JSON.stringify(report)}`))
    return 0
  } catch (error) {
    throw new ConfigError([`database: migrating ${database.label} failed: ${oneLine(error)}`], path)
  } finally {
    await database.close()
  }
}

/** A JSON option (`--limits '{"…"}'`), `none` for null; undefined when absent. */
function jsonOption(values: Record<string, unknown>, name: string): unknown {
  const text = values[name] as string | undefined
  if (text === undefined) return undefined
  if (text === 'none' || text === 'null') return null
  try {
    return JSON.parse(text)
  } catch (error) {
    throw new UsageError(`--${name} must be JSON (or "none"): ${oneLine(error)}`)
  }
}

/** A text option, `none` for null. */
function textOption(values: Record<string, unknown>, name: string): string | null | undefined {
  const text = values[name] as string | undefined
  return text === 'none' ? null : text
}

function fieldsOf(
  values: Record<string, unknown>,
  texts: string[],
  jsons: string[],
): Record<string, unknown> {
  const body: Record<string, unknown> = {}
  for (const name of texts) {
    const value = textOption(values, name)
    if (value !== undefined) body[name === 'expires' ? 'expiresAt' : name] = value
  }
  for (const name of jsons) {
    const value = jsonOption(values, name)
    if (value !== undefined) body[name] = value
  }
  return body
}

const KEY_TEXTS = ['name', 'tier', 'team', 'user', 'expires']
const JSONS = ['limits', 'budgets', 'metadata']
/** A key also takes queue settings over its tier's (docs/queueing.md). */
const KEY_JSONS = [...JSONS, 'queue']

function needId(positionals: string[], what: string): string {
  const id = positionals[2]
  if (id === undefined)
    throw new UsageError(`${what} needs an id: sluice ${positionals[0]} ${positionals[1]} <id>`)
  return id
}

function print(io: CliIo, value: unknown): number {
  io.out(JSON.stringify(value, null, 2))
  return 0
}

function keyLine(
  key: { id: string; name: string; tier: string; team: string | null; status: string },
  source: string,
): string {
  return escapeControls(
    [
      key.id.padEnd(16),
      key.name.slice(0, 24).padEnd(24),
      key.tier.padEnd(14),
      (key.team ?? '-').padEnd(14),
      key.status.padEnd(8),
      source,
    ].join(' '),
  )
}

export async function keysCommand(
  values: Record<string, unknown>,
  positionals: string[],
  io: CliIo,
): Promise<number> {
  const sub = positionals[1]
  return withService(values, io, async (service) => {
    switch (sub) {
      case 'create': {
        if (!values.tier) throw new UsageError('keys create needs --tier (e.g. --tier service)')
        if (!values.name)
          throw new UsageError('keys create needs --name (who the key is for, e.g. --name ci-bot)')
        const issued = await service.createKey(fieldsOf(values, KEY_TEXTS, KEY_JSONS), actor())
        if (values.json) return print(io, issued)
        io.out(
          escapeControls(
            `API key ${issued.id} for ${issued.name} (${issued.tier}) — shown once, store it now:`,
          ),
        )
        io.out(`  ${issued.key}`)
        return 0
      }
      case 'list': {
        const query: Record<string, unknown> = {}
        for (const name of ['team', 'tier', 'user', 'status', 'search', 'source', 'limit']) {
          if (values[name] !== undefined) query[name] = values[name]
        }
        const page = await service.listKeys(query)
        if (values.json) return print(io, page)
        io.out(
          `${'id'.padEnd(16)} ${'name'.padEnd(24)} ${'tier'.padEnd(14)} ${'team'.padEnd(14)} ${'status'.padEnd(8)} source`,
        )
        for (const key of page.items) {
          io.out(keyLine(key, key.readOnly ? `${key.source} (read-only)` : key.source))
        }
        if (page.total > page.items.length)
          io.out(`… ${page.total - page.items.length} more (--limit, --search)`)
        return 0
      }
      case 'show':
        return print(io, await service.getKey(needId(positionals, 'keys show')))
      case 'update':
        return print(
          io,
          await service.updateKey(
            needId(positionals, 'keys update'),
            fieldsOf(values, KEY_TEXTS, KEY_JSONS),
            actor(),
          ),
        )
      case 'revoke':
        return print(io, await service.revokeKey(needId(positionals, 'keys revoke'), actor()))
      case 'rotate': {
        const id = needId(positionals, 'keys rotate')
        const grace = values.grace as string | undefined
        const issued = await service.rotateKey(id, grace === undefined ? {} : { grace }, actor())
        if (values.json) return print(io, issued)
        const until = issued.previousSecretValidUntil
        io.out(
          escapeControls(
            `new secret for ${issued.id} — shown once, store it now${until ? ` (the old one works until ${until})` : ' (the old one stopped working)'}:`,
          ),
        )
        io.out(`  ${issued.key}`)
        return 0
      }
      default:
        throw new UsageError('usage: sluice keys create|list|show|update|revoke|rotate (see sluice --help)')
    }
  })
}

export async function teamsCommand(
  values: Record<string, unknown>,
  positionals: string[],
  io: CliIo,
): Promise<number> {
  const sub = positionals[1]
  return withService(values, io, async (service) => {
    switch (sub) {
      case 'create': {
        const id = needId(positionals, 'teams create')
        return print(io, await service.createTeam({ id, ...fieldsOf(values, ['name'], JSONS) }, actor()))
      }
      case 'list': {
        const query: Record<string, unknown> = {}
        for (const name of ['search', 'limit']) if (values[name] !== undefined) query[name] = values[name]
        return print(io, await service.listTeams(query))
      }
      case 'show':
        return print(io, await service.getTeam(needId(positionals, 'teams show')))
      case 'update':
        return print(
          io,
          await service.updateTeam(
            needId(positionals, 'teams update'),
            fieldsOf(values, ['name'], JSONS),
            actor(),
          ),
        )
      case 'delete':
        return print(
          io,
          await service.deleteTeam(
            needId(positionals, 'teams delete'),
            { force: values.force === true },
            actor(),
          ),
        )
      default:
        throw new UsageError('usage: sluice teams create|list|show|update|delete <id> (see sluice --help)')
    }
  })
}

/** The admin API's groupings: the CLI and the API group the same ledger the same way. */
const DB_GROUPS: readonly string[] = USAGE_GROUPS

/** `sluice usage` over the database's ledger: totals since `--since`, grouped by `--by`. */
export async function databaseUsage(
  values: Record<string, unknown>,
  io: CliIo,
  sinceMs: number,
): Promise<number> {
  const by = (values.by as string | undefined) ?? 'key'
  if (!DB_GROUPS.includes(by))
    throw new UsageError(`--by must be one of ${DB_GROUPS.join(', ')}, got "${by}"`)
  return withService(values, io, async (service) => {
    const from = Number.isFinite(sinceMs) ? Date.now() - sinceMs : undefined
    const report = await service.usage({ groupBy: by, sort: 'usd', ...(from !== undefined && { from }) })
    if (values.json) return print(io, report)
    if (report.items.length === 0) {
      io.out(`no usage recorded${report.from ? ` since ${report.from}` : ''}`)
      return 0
    }
    io.out(`usage since ${report.from ?? 'the start of the ledger'}, by ${by} (database)`)
    io.out(
      `${by.padEnd(24)} ${'requests'.padStart(9)} ${'refused'.padStart(8)} ${'tokens'.padStart(12)} ${'usd'.padStart(12)}`,
    )
    for (const row of report.items as unknown as Record<string, unknown>[]) {
      io.out(
        escapeControls(
          `${String(row.group ?? '-')
            .slice(0, 24)
            .padEnd(
              24,
            )} ${String(row.requests).padStart(9)} ${String(row.refused).padStart(8)} ${String(row.tokens).padStart(12)} ${Number(row.usd).toFixed(6).padStart(12)}`,
        ),
      )
    }
    return 0
  })
}
