/**
 * The usage ledger on a disk that fills up (a real tmpfs) or a path that cannot be written: calls
 * are never silently unrecorded. /readyz, a metric and one log line per transition say so, the
 * records wait in memory and reach the file once it has room, and `ledger.onFailure: refuse`
 * turns calls away instead.
 */
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { GatewayConfigInput } from '../../src/gateway/config/schema.js'
import { type Gateway, startGateway } from '../../src/gateway/index.js'
import { type LedgerRecord, readLedger } from '../../src/gateway/ledger.js'
import { canMountSmallDisk, mountSmallDisk } from '../helpers/small-disk.js'
import { chat, metricSum } from './serve-process.js'

async function records(path: string): Promise<LedgerRecord[]> {
  const out: LedgerRecord[] = []
  for await (const r of readLedger(path)) out.push(r)
  return out
}

async function start(config: GatewayConfigInput): Promise<{ gateway: Gateway; logs: string[] }> {
  const logs: string[] = []
  const gateway = await startGateway(
    { port: 0, ...config },
    { env: {}, logDestination: { write: (line: string) => logs.push(line) } },
  )
  return { gateway, logs }
}

async function call(gateway: Gateway, i: number): Promise<number> {
  const res = await fetch(`${gateway.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${gateway.demoKey}`, 'content-type': 'application/json' },
    body: chat(`call ${i}`),
  })
  await res.text()
  return res.status
}

async function readyz(gateway: Gateway): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${gateway.url}/readyz`)
  return { status: res.status, body: (await res.json()) as Record<string, unknown> }
}

async function metrics(gateway: Gateway): Promise<string> {
  return (await fetch(`${gateway.url}/metrics`)).text()
}

const messages = (logs: string[], pattern: RegExp) =>
  logs.map((l) => (JSON.parse(l) as { msg: string }).msg).filter((m) => pattern.test(m))

describe.skipIf(!canMountSmallDisk)('the ledger on a disk that fills up (tmpfs)', () => {
  it('keeps serving, says so on /readyz, in a metric and in one log line, and writes every record once the disk has room', async () => {
    const disk = mountSmallDisk(512 * 1024)!
    const path = join(disk.dir, 'usage.jsonl')
    const { gateway, logs } = await start({ ledger: { path } })
    try {
      expect(await call(gateway, -1)).toBe(200)
      await gateway.ledger!.flush()
      disk.fill(2048)
      const statuses: number[] = []
      for (let i = 0; i < 200; i++) statuses.push(await call(gateway, i))
      expect(statuses.every((s) => s === 200)).toBe(true)
      await gateway.ledger!.flush()

      const failing = await readyz(gateway)
      expect(failing.status).toBe(200)
      expect(failing.body).toMatchObject({ status: 'degraded', ledger: { state: 'failing' } })
      expect(String((failing.body.ledger as { lastError: string }).lastError)).toMatch(/ENOSPC/)
      const during = await metrics(gateway)
      expect(metricSum(during, 'sluice_ledger_up')).toBe(0)
      expect(metricSum(during, 'sluice_ledger_write_failures_total')).toBeGreaterThanOrEqual(1)
      expect(metricSum(during, 'sluice_ledger_buffered_records')).toBeGreaterThan(0)
      expect(messages(logs, /usage ledger cannot write/)).toHaveLength(1)

      disk.free()
      await expect.poll(async () => (await readyz(gateway)).body.status, { timeout: 10_000 }).toBe('ready')
      const written = await records(path)
      // Every call once: the one before the disk filled, and the 200 after.
      expect(written).toHaveLength(201)
      const after = await metrics(gateway)
      expect(metricSum(after, 'sluice_ledger_up')).toBe(1)
      expect(metricSum(after, 'sluice_ledger_records_total')).toBe(201)
      expect(metricSum(after, 'sluice_ledger_dropped_records_total')).toBe(0)
      expect(messages(logs, /usage ledger writes again/)).toHaveLength(1)
      expect(messages(logs, /usage ledger cannot write/)).toHaveLength(1)
    } finally {
      await gateway.close()
      disk.unmount()
    }
  })

  it('ledger.onFailure: refuse answers 503 (and /readyz 503) while the disk is full, and serves again once it is not', async () => {
    const disk = mountSmallDisk(512 * 1024)!
    const path = join(disk.dir, 'usage.jsonl')
    const { gateway } = await start({ ledger: { path, onFailure: 'refuse' } })
    try {
      disk.fill(0)
      // The first calls are served until a write fails; from then on calls are refused.
      let status = 200
      for (let i = 0; i < 100 && status === 200; i++) {
        status = await call(gateway, i)
        await gateway.ledger!.flush()
      }
      expect(status).toBe(503)
      const res = await fetch(`${gateway.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${gateway.demoKey}` },
        body: chat('refused'),
      })
      expect(res.status).toBe(503)
      expect(res.headers.get('retry-after')).toBe('5')
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('ledger_unavailable')
      expect(await readyz(gateway)).toMatchObject({ status: 503, body: { status: 'unavailable' } })
      // Refused calls are charged nothing: the service tier's hourly count is what was served.
      const served = (await records(path)).length + gateway.ledger!.health().buffered
      const peek = await gateway.sluice
        .tierLimiter('service')
        .peek('key:demo', { requests: 0, concurrent: 0 })
      const hourly = peek.limits.find((l) => l.name === 'hourly')!
      expect(hourly.limit - hourly.remaining).toBe(served)

      disk.free()
      await expect.poll(async () => (await readyz(gateway)).status, { timeout: 10_000 }).toBe(200)
      expect(await call(gateway, 1000)).toBe(200)
    } finally {
      await gateway.close()
      disk.unmount()
    }
  })
})

describe('a ledger path that cannot be written', () => {
  it('fails at start-up with a message that names the path and says why', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-ledger-path-'))
    writeFileSync(join(dir, 'blocker'), '')
    const path = join(dir, 'blocker', 'usage.jsonl')
    await expect(startGateway({ port: 0, ledger: { path } }, { logger: false, env: {} })).rejects.toThrow(
      `ledger.path: cannot create ${path}: ${join(dir, 'blocker')} is a file, not a directory`,
    )
    await expect(
      startGateway({ port: 0, ledger: { path: dir } }, { logger: false, env: {} }),
    ).rejects.toThrow(/ledger\.path: cannot write .*: it is a directory/)
  })
})
