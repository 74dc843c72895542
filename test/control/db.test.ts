import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import {
  ControlInputError,
  MIGRATION_NAMES,
  migrateTo,
  openControl,
  openDatabase,
  redactUrl,
} from '../../src/control/index.js'
import { freePort } from '../helpers/free-port.js'

const dir = mkdtempSync(join(tmpdir(), 'sluice-db-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('opening the database', () => {
  it('creates the SQLite file and its directory, migrated, where it is told', async () => {
    const path = join(dir, 'nested', 'deeper', 'sluice.db')
    const c = await openControl({ url: path })
    expect(c.dialect).toBe('sqlite')
    expect(c.label).toBe(`sqlite:${path}`)
    await c.close()
    const again = await openControl({ url: `sqlite:${path}`, migrate: false })
    await again.close()
  })

  it('refuses other URL schemes without echoing the URL (it may hold a password)', () => {
    for (const url of ['mysql://root:hunter2@db/x', 'postgress://u:hunter2@h/db', 'redis://:hunter2@h']) {
      let error: unknown
      try {
        openDatabase({ url })
      } catch (e) {
        error = e
      }
      expect(error).toBeInstanceOf(ControlInputError)
      expect((error as Error).message).not.toContain('hunter2')
      expect((error as ControlInputError).field).toBe('database')
    }
    expect(() => openDatabase({ url: '' })).toThrow(ControlInputError)
    expect(() => openDatabase({ url: 'sqlite:' })).toThrow(ControlInputError)
  })

  it('masks the password of a PostgreSQL URL in labels and in the errors of a failed open', async () => {
    expect(redactUrl('postgres://sluice:hunter2@db.internal:5432/sluice')).toBe(
      'postgres://sluice:***@db.internal:5432/sluice',
    )
    expect(redactUrl('postgres://db.internal/sluice')).toBe('postgres://db.internal/sluice')
    const port = await freePort() // nothing listens there
    const error = await openControl({
      url: `postgres://sluice:hunter2@127.0.0.1:${port}/sluice`,
      connectTimeoutMs: 2000,
    }).then(
      () => undefined,
      (e: unknown) => e as Error,
    )
    expect(error).toBeInstanceOf(Error)
    expect(error!.message).toContain(`postgres://sluice:***@127.0.0.1:${port}/sluice`)
    expect(`${error!.message} ${String(error!.cause)}`).not.toContain('hunter2')
  })

  it('with migrations off, refuses a schema older than the code and says what to run', async () => {
    const path = join(dir, 'old.db')
    const old = openDatabase({ url: path })
    await migrateTo(old, MIGRATION_NAMES[0]!)
    await old.close()
    await expect(openControl({ url: path, migrate: false })).rejects.toThrow(/sluice migrate/)
    const fresh = join(dir, 'empty.db')
    await expect(openControl({ url: fresh, migrate: false })).rejects.toThrow(/schema none/)
  })
})
