import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import OpenAI, { AuthenticationError } from 'openai'
import { describe, expect, it } from 'vitest'
import { type CliIo, main } from '../../src/cli.js'
import { startGateway } from '../../src/gateway/index.js'

function capture(cwd: string, env: Record<string, string | undefined> = {}) {
  const out: string[] = []
  const err: string[] = []
  const io: CliIo = { out: (t) => out.push(t), err: (t) => err.push(t), env, cwd }
  return { io, out: () => out.join('\n'), err: () => err.join('\n') }
}

async function run(cwd: string, ...args: string[]) {
  const c = capture(cwd)
  const code = await main(args, c.io)
  return { code, out: c.out(), err: c.err() }
}

const YAML_KEY_HASH = 'a'.repeat(64)

describe('sluice keys | teams | usage | migrate on the control database', () => {
  it('creates, lists, shows, updates, rotates and revokes keys and teams, and the gateway agrees', async () => {
    const d = mkdtempSync(join(tmpdir(), 'sluice-cli-db-'))
    writeFileSync(
      join(d, 'sluice.yaml'),
      `port: 0\nledger: { path: false }\ndatabase: { url: sluice.db }\nauth:\n  keys:\n    - { id: from-yaml, tier: service, hash: ${YAML_KEY_HASH} }\n`,
    )
    const migrated = await run(d, 'migrate')
    expect(migrated.code).toBe(0)
    expect(migrated.out).toContain('sluice.db')

    const team = await run(
      d,
      'teams',
      'create',
      'research',
      '--name',
      'Research',
      '--budgets',
      '{"usd":{"limit":5,"period":"month"}}',
    )
    expect(team.code).toBe(0)
    expect(JSON.parse(team.out).budgets.usd.limit).toBe(5)

    const created = await run(
      d,
      'keys',
      'create',
      '--name',
      'ci-bot',
      '--tier',
      'service',
      '--team',
      'research',
    )
    expect(created.code).toBe(0)
    const key = /sk-sluice-[a-z2-7]{10}-[A-Za-z0-9_-]{43}/.exec(created.out)![0]
    const id = key.slice('sk-sluice-'.length, 'sk-sluice-'.length + 10)

    const list = await run(d, 'keys', 'list')
    expect(list.code).toBe(0)
    expect(list.out).toMatch(new RegExp(`${id}\\s+ci-bot\\s+service\\s+research\\s+active\\s+database`))
    expect(list.out).toMatch(/from-yaml .*sluice\.yaml \(read-only\)/)
    const listed = JSON.parse((await run(d, 'keys', 'list', '--json')).out)
    expect(listed.total).toBe(2)
    expect(listed.items.map((k: { id: string; source: string }) => [k.id, k.source])).toEqual([
      [id, 'database'],
      ['from-yaml', 'sluice.yaml'],
    ])
    expect(listed.items[1]).toMatchObject({ tier: 'service', readOnly: true, status: 'active' })
    const onlyYaml = JSON.parse((await run(d, 'keys', 'list', '--source', 'sluice.yaml', '--json')).out)
    expect(onlyYaml.items.map((k: { id: string }) => k.id)).toEqual(['from-yaml'])
    // The file's key is shown, and refused for every change with a line that says where it lives.
    expect(JSON.parse((await run(d, 'keys', 'show', 'from-yaml')).out)).toMatchObject({
      id: 'from-yaml',
      source: 'sluice.yaml',
      readOnly: true,
    })
    for (const args of [
      ['revoke', 'from-yaml'],
      ['rotate', 'from-yaml'],
      ['update', 'from-yaml', '--tier', 'premium'],
    ]) {
      const refused = await run(d, 'keys', ...args)
      expect(refused.code, args.join(' ')).toBe(2)
      expect(refused.err).toContain('managed in sluice.yaml')
    }

    const shown = JSON.parse((await run(d, 'keys', 'show', id)).out)
    expect(shown).toMatchObject({ id, name: 'ci-bot', team: 'research', status: 'active' })
    expect(JSON.stringify(shown)).not.toContain(key.slice(-43))

    const updated = await run(d, 'keys', 'update', id, '--tier', 'premium', '--team', 'none')
    expect(updated.code).toBe(0)
    expect(JSON.parse(updated.out)).toMatchObject({ tier: 'premium', team: null })

    const badTier = await run(d, 'keys', 'update', id, '--tier', 'gold')
    expect(badTier.code).toBe(2)
    expect(badTier.err).toContain('tier')
    const badJson = await run(d, 'keys', 'update', id, '--budgets', '{nope')
    expect(badJson.code).toBe(2)
    expect(badJson.err).toContain('--budgets must be JSON')
    expect((await run(d, 'keys', 'show', 'zzzzzzzzzz')).code).toBe(2)

    // The gateway on the same database accepts the key with its new tier.
    const gw = await startGateway(
      { port: 0, ledger: { path: false }, database: { url: join(d, 'sluice.db') } },
      {
        logger: false,
        env: {},
      },
    )
    try {
      const client = new OpenAI({ apiKey: key, baseURL: `${gw.url}/v1`, maxRetries: 0 })
      const { response } = await client.models.list().withResponse()
      expect(response.headers.get('x-ratelimit-limit-requests')).toBe('2000')

      const rotated = await run(d, 'keys', 'rotate', id)
      expect(rotated.code).toBe(0)
      const fresh = /sk-sluice-[a-z2-7]{10}-[A-Za-z0-9_-]{43}/.exec(rotated.out)![0]
      expect(fresh).not.toBe(key)
      // Another process changed the key: this gateway hears of it through the change feed.
      await expect
        .poll(
          () =>
            client.models.list().then(
              () => 'ok',
              (e) => e.constructor.name,
            ),
          { timeout: 5000 },
        )
        .toBe(AuthenticationError.name)
      const renewed = new OpenAI({ apiKey: fresh, baseURL: `${gw.url}/v1`, maxRetries: 0 })
      await renewed.models.list()

      expect((await run(d, 'keys', 'revoke', id)).code).toBe(0)
      await expect
        .poll(
          () =>
            renewed.models.list().then(
              () => 'ok',
              (e) => e.constructor.name,
            ),
          { timeout: 5000 },
        )
        .toBe(AuthenticationError.name)
    } finally {
      await gw.close()
    }

    const usage = await run(d, 'usage', '--by', 'key', '--json')
    expect(usage.code).toBe(0)
    const rows = JSON.parse(usage.out).items as { group: string; requests: number }[]
    // Served with the key (its first secret, then the rotated one); refused ones carry no key id.
    expect(rows.find((r) => r.group === id)?.requests).toBeGreaterThanOrEqual(2)
    const table = await run(d, 'usage', '--by', 'outcome')
    expect(table.out).toContain('unauthenticated')

    const teams = JSON.parse((await run(d, 'teams', 'list')).out)
    expect(teams.items.map((t: { id: string }) => t.id)).toEqual(['research'])
  }, 60_000)

  it("sets, shows and clears a key's queue settings, and names a bad one", async () => {
    const d = mkdtempSync(join(tmpdir(), 'sluice-cli-queue-'))
    writeFileSync(join(d, 'sluice.yaml'), 'port: 0\nledger: { path: false }\ndatabase: { url: sluice.db }\n')
    const created = await run(
      d,
      'keys',
      'create',
      '--tier',
      'service',
      '--name',
      'waits',
      '--queue',
      '{"maxWait":"2s","weight":4}',
      '--json',
    )
    expect(created.code).toBe(0)
    const key = JSON.parse(created.out) as { id: string; queue: unknown }
    expect(key.queue).toEqual({ maxWait: 2000, weight: 4 })
    const cleared = await run(d, 'keys', 'update', key.id, '--queue', 'none', '--json')
    expect(cleared.code).toBe(0)
    expect((JSON.parse(cleared.out) as { queue: unknown }).queue).toBeNull()
    const bad = await run(d, 'keys', 'update', key.id, '--queue', '{"maxWait":"soon"}')
    expect(bad.code).not.toBe(0)
    expect(bad.err).toContain('queue.maxWait')
  })

  it('says in one line when the database cannot be opened', async () => {
    const d = mkdtempSync(join(tmpdir(), 'sluice-cli-db-'))
    writeFileSync(join(d, 'sluice.yaml'), 'database: { url: "postgres://nobody@127.0.0.1:1/none" }\n')
    const failed = await run(d, 'keys', 'list')
    expect(failed.code).toBe(1)
    expect(failed.err).toMatch(
      /database: cannot open postgres:\/\/nobody@127\.0\.0\.1:1\/none: .*ECONNREFUSED/,
    )
    const off = mkdtempSync(join(tmpdir(), 'sluice-cli-db-'))
    writeFileSync(join(off, 'sluice.yaml'), 'database: false\n')
    const refused = await run(off, 'teams', 'list')
    expect(refused.code).toBe(2)
    expect(refused.err).toContain('database: false')
  })
})
