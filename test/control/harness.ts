import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { type Control, type ControlOptions, openControl } from '../../src/control/index.js'

/** Where the contract suite runs: a database of its own, made at setup and removed at teardown. */
export interface ControlHarness {
  readonly name: string
  readonly dialect: 'sqlite' | 'postgres'
  setup(): Promise<void>
  /** The main database of this run. */
  url(): string
  /** One more empty database (for migration tests), removed at teardown. */
  freshUrl(): Promise<string>
  teardown(): Promise<void>
}

export function sqliteHarness(): ControlHarness {
  let dir: string | undefined
  let count = 0
  return {
    name: 'SQLite',
    dialect: 'sqlite',
    async setup() {
      dir = mkdtempSync(join(tmpdir(), 'sluice-control-'))
    },
    url: () => join(dir!, 'sluice.db'),
    async freshUrl() {
      return join(dir!, `fresh-${++count}.db`)
    },
    async teardown() {
      if (dir) rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** The PostgreSQL server the tests use; each run creates databases of its own on it and drops them. */
export const PG_SERVER_URL = process.env.SLUICE_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'

export function postgresHarness(): ControlHarness {
  const made: string[] = []
  let main: string | undefined
  const withAdmin = async <T>(work: (client: pg.Client) => Promise<T>): Promise<T> => {
    const client = new pg.Client({ connectionString: PG_SERVER_URL, connectionTimeoutMillis: 5000 })
    try {
      await client.connect()
    } catch (error) {
      throw new Error(
        `PostgreSQL is needed for these tests and did not answer at ${PG_SERVER_URL} ` +
          `(set SLUICE_TEST_PG_URL; .ci/run starts it): ${(error as Error).message}`,
      )
    }
    try {
      return await work(client)
    } finally {
      await client.end()
    }
  }
  const create = async () => {
    const name = `sluice_test_${process.pid}_${randomBytes(6).toString('hex')}`
    await withAdmin((c) => c.query(`CREATE DATABASE ${name}`))
    made.push(name)
    const url = new URL(PG_SERVER_URL)
    url.pathname = `/${name}`
    return url.toString()
  }
  return {
    name: 'PostgreSQL',
    dialect: 'postgres',
    async setup() {
      main = await create()
    },
    url: () => main!,
    freshUrl: create,
    async teardown() {
      await withAdmin(async (c) => {
        for (const name of made) await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      })
    },
  }
}

/** A clock the tests move by hand: record times, expiry and grace periods without sleeping. */
export function manualClock(start = Date.parse('2026-11-27T12:00:00.000Z')) {
  let now = start
  return {
    now: () => now,
    set: (ms: number) => {
      now = ms
    },
    advance: (ms: number) => {
      now += ms
    },
  }
}

/** Opens Controls on the harness's database and closes every one of them at the end. */
export function controls(harness: ControlHarness) {
  const open: Control[] = []
  return {
    async open(options: ControlOptions = {}): Promise<Control> {
      const control = await openControl({ url: harness.url(), ...options })
      open.push(control)
      return control
    },
    async closeAll(): Promise<void> {
      await Promise.all(open.splice(0).map((c) => c.close()))
    },
  }
}

export const ACTOR = { actor: 'test:contract' }
