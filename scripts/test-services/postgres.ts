// PostgreSQL for the tests: a server at SLUICE_TEST_PG_URL (default below) on which the URL's role
// may create databases (the tests create and drop their own). Reached with psql, the client that
// comes with the server package; a local cluster that is down is started with pg_ctlcluster.
import { readFileSync } from 'node:fs'
import { type Probe, unusable } from './probe.js'
import { firstLine, forPerson, type Privilege, run, which } from './system.js'

export const DEFAULT_PG_URL = 'postgres://postgres@127.0.0.1:5432/postgres'

interface Target {
  /** The URL without its password (a password goes to psql through PGPASSWORD). */
  url: string
  password: string | undefined
  host: string
  port: number
  user: string
  /** user@host:port, for messages (never the password). */
  label: string
}

function target(env: NodeJS.ProcessEnv): Target | string {
  const raw = env.SLUICE_TEST_PG_URL || DEFAULT_PG_URL
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    return 'SLUICE_TEST_PG_URL is not a URL'
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    return `SLUICE_TEST_PG_URL must start with postgres:// (it starts with ${url.protocol}//)`
  }
  const password = url.password ? decodeURIComponent(url.password) : undefined
  url.password = ''
  const host = url.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1'
  const port = Number(url.port || 5432)
  const user = decodeURIComponent(url.username) || 'postgres'
  return { url: url.toString(), password, host, port, user, label: `${user}@${host}:${port}` }
}

interface Cluster {
  version: string
  name: string
  port: number
  running: boolean
  ownerUid: number
  hbaFile: string
}

/** The clusters pg_lsclusters knows, or undefined when the server tools are not installed. */
export async function listClusters(env: NodeJS.ProcessEnv): Promise<Cluster[] | undefined> {
  const tool = which('pg_lsclusters', env)
  if (!tool) return undefined
  const listed = await run([tool, '--json'], { env, timeoutMs: 30_000 })
  if (listed.code !== 0) return undefined
  try {
    const clusters = JSON.parse(listed.stdout) as Array<Record<string, unknown>>
    return clusters.map((c) => {
      const config = (c.config ?? {}) as Record<string, unknown>
      return {
        version: String(c.version),
        name: String(c.cluster),
        port: Number(c.port),
        running: Boolean(c.running),
        ownerUid: Number(c.owneruid),
        hbaFile: String(config.hba_file ?? `${String(c.configdir)}/pg_hba.conf`),
      }
    })
  } catch {
    return undefined
  }
}

const LOCAL_HOSTS = new Set(['127.0.0.1', 'localhost', '::1'])

function clusterCommand(cluster: Cluster, action: 'start' | 'reload'): string[] {
  return ['pg_ctlcluster', '--skip-systemctl-redirect', cluster.version, cluster.name, action]
}

export async function probePostgres(env: NodeJS.ProcessEnv): Promise<Probe> {
  const to = target(env)
  if (typeof to === 'string') return unusable(to, 'set it to postgres://user@host:port/database')
  const psql = which('psql', env)
  if (!psql) return { state: 'missing', problem: 'PostgreSQL is not installed (psql not on PATH)' }
  const query = await run(
    [
      psql,
      '--no-psqlrc',
      '--no-align',
      '--tuples-only',
      '--quiet',
      '--no-password',
      '--dbname',
      to.url,
      '--command',
      "select (rolcreatedb or rolsuper)::text || ' ' || current_setting('server_version') from pg_roles where rolname = current_user",
    ],
    {
      env: { ...env, PGCONNECT_TIMEOUT: '5', ...(to.password ? { PGPASSWORD: to.password } : {}) },
      timeoutMs: 30_000,
    },
  )
  const visibleUrl = env.SLUICE_TEST_PG_URL || DEFAULT_PG_URL
  if (query.code === 0) {
    const [mayCreate, ...version] = query.stdout.trim().split(' ')
    if (mayCreate === 'true') {
      return {
        state: 'ready',
        summary: `${to.label} can create databases (PostgreSQL ${version.join(' ')})`,
        env: { SLUICE_TEST_PG_URL: visibleUrl },
      }
    }
    return unusable(
      `role ${to.user} on ${to.host}:${to.port} may not create databases`,
      `as a superuser: ALTER ROLE "${to.user}" CREATEDB, or set SLUICE_TEST_PG_URL to a role that may`,
    )
  }
  const error = firstLine(query).replace(/^psql: error: /, '')
  if (/Connection refused|No such file or directory|timeout expired/i.test(error)) {
    if (!LOCAL_HOSTS.has(to.host)) {
      return unusable(
        `PostgreSQL at ${to.host}:${to.port} does not answer (${error})`,
        'start it, or point SLUICE_TEST_PG_URL at one that runs',
      )
    }
    const clusters = await listClusters(env)
    if (!clusters) {
      return {
        state: 'missing',
        problem: 'the PostgreSQL server is not installed (pg_lsclusters not on PATH)',
      }
    }
    const cluster = clusters?.find((c) => c.port === to.port)
    if (cluster && !cluster.running) {
      return {
        state: 'stopped',
        problem: `PostgreSQL ${cluster.version}/${cluster.name} (port ${cluster.port}) is not running`,
        start: clusterCommand(cluster, 'start'),
        ownerUid: cluster.ownerUid,
      }
    }
    if (cluster) {
      return unusable(
        `PostgreSQL ${cluster.version}/${cluster.name} runs but ${to.host}:${to.port} refuses connections (${error})`,
        `let it listen on ${to.host} (listen_addresses in its postgresql.conf)`,
      )
    }
    const others = clusters.map((c) => `${c.version}/${c.name} on port ${c.port}`).join(', ')
    return unusable(
      `no PostgreSQL cluster on port ${to.port}${others ? ` (there is ${others})` : ''}`,
      others
        ? 'set SLUICE_TEST_PG_URL to the port of one of them'
        : forPerson(['pg_createcluster', '--start', '--port', String(to.port), '<version>', 'main']),
    )
  }
  if (/password|pg_hba\.conf|authentication|role .* does not exist/i.test(error)) {
    return unusable(
      `PostgreSQL at ${to.host}:${to.port} refused ${to.user} (${error})`,
      'set SLUICE_TEST_PG_URL=postgres://user:password@host:port/database for a role that may create databases',
    )
  }
  return unusable(`psql could not use ${to.label} (${error})`, 'check SLUICE_TEST_PG_URL')
}

const TRUST_MARK = '# sluice tests:'

/**
 * After this run installed PostgreSQL: a fresh Debian cluster asks for a password over TCP, so the
 * cluster the tests use trusts connections from this machine (127.0.0.1 and ::1), as the CI
 * machines do. Done only on a cluster this run installed; an existing setup is never edited.
 */
export async function trustLocalConnections(
  env: NodeJS.ProcessEnv,
  how: Privilege,
  log: (line: string) => void,
): Promise<string | undefined> {
  const to = target(env)
  if (typeof to === 'string' || !LOCAL_HOSTS.has(to.host)) return undefined
  const cluster = (await listClusters(env))?.find((c) => c.port === to.port)
  if (!cluster) return undefined
  let hba: string
  try {
    hba = readFileSync(cluster.hbaFile, 'utf8')
  } catch (error) {
    return `could not read ${cluster.hbaFile}: ${(error as Error).message}`
  }
  if (hba.includes(TRUST_MARK)) return undefined
  const lines = [
    `${TRUST_MARK} connections from this machine are trusted (added by npm test, which installed PostgreSQL)`,
    'host all all 127.0.0.1/32 trust',
    'host all all ::1/128 trust',
  ]
  log(`postgres: trusting connections from 127.0.0.1 and ::1 in ${cluster.hbaFile}`)
  const sudo = how === 'sudo' ? ['sudo', '-n'] : []
  const write = await run([...sudo, 'tee', cluster.hbaFile], {
    env,
    timeoutMs: 30_000,
    input: `${lines.join('\n')}\n${hba}`,
  })
  if (write.code !== 0) return `could not write ${cluster.hbaFile}: ${firstLine(write)}`
  if (cluster.running) {
    const reload = await run([...sudo, ...clusterCommand(cluster, 'reload')], { env, timeoutMs: 60_000 })
    if (reload.code !== 0) return `could not reload PostgreSQL: ${firstLine(reload)}`
  }
  return undefined
}
