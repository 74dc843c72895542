import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import {
  Ledger,
  LedgerPathError,
  type LedgerRecord,
  ledgerFiles,
  readLedger,
  type SkippedLine,
  summarize,
} from '../../src/gateway/ledger.js'
import { canMountSmallDisk, mountSmallDisk } from '../helpers/small-disk.js'

function record(i: number, overrides: Partial<LedgerRecord> = {}): LedgerRecord {
  return {
    time: new Date(Date.UTC(2026, 0, 1, 0, i)).toISOString(),
    subject: `key:k${i % 3}`,
    tier: 'service',
    model: i % 2 ? 'gpt-4o' : 'gpt-4o-mini',
    route: 'chat',
    stream: false,
    status: 200,
    outcome: 'ok',
    limited: true,
    source: 'upstream',
    promptTokens: 10 + i,
    completionTokens: 5,
    tokens: 15 + i,
    usd: 0.001 * i,
    ...overrides,
  }
}

async function all(path: string, since?: Date): Promise<LedgerRecord[]> {
  const out: LedgerRecord[] = []
  for await (const r of readLedger(path, since)) out.push(r)
  return out
}

describe('usage ledger', () => {
  it('appends JSONL, rotates by size, keeps N files, and reads them back oldest first', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-ledger-'))
    const path = join(dir, 'nested', 'usage.jsonl')
    const ledger = new Ledger({ path, maxSize: 1000, keep: 3 })
    const lineSize = `${JSON.stringify(record(10))}\n`.length
    expect(4 * lineSize).toBeLessThan(1000)
    for (let i = 0; i < 60; i++) {
      ledger.append(record(i))
      // Flush now and then so that rotation happens between batches.
      if (i % 4 === 3) await ledger.flush()
    }
    await ledger.close()
    const files = await ledgerFiles(path)
    expect(files).toEqual([`${path}.3`, `${path}.2`, `${path}.1`, path])
    expect(existsSync(`${path}.4`)).toBe(false)
    for (const f of files) expect(readFileSync(f, 'utf8').length).toBeLessThanOrEqual(1000 + 4 * lineSize)
    const kept = await all(path)
    // The oldest records went with the dropped files; what is kept is the newest tail, in order.
    expect(kept.length).toBeGreaterThanOrEqual(12)
    expect(kept.length).toBeLessThan(60)
    expect(kept).toEqual(Array.from({ length: kept.length }, (_, i) => record(60 - kept.length + i)))
  })

  it('writes appends on its own without a flush, in order, whether a batch ends by its window or its size', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-ledger-'))
    const path = join(dir, 'usage.jsonl')
    const ledger = new Ledger({ path, maxSize: 100_000_000, keep: 1 })
    for (let i = 0; i < 50; i++) ledger.append(record(i))
    // Nothing is written synchronously: the batch waits for its window.
    expect(existsSync(path) ? readFileSync(path, 'utf8') : '').toBe('')
    await expect.poll(async () => (await all(path)).length, { timeout: 5_000 }).toBe(50)
    // ~2,000 records (> 256 KB) in one go are written as they pass the size cap.
    const big = Array.from({ length: 2_000 }, (_, i) => record(100 + i, { model: 'x'.repeat(80) }))
    for (const r of big) ledger.append(r)
    await expect.poll(async () => (await all(path)).length, { timeout: 5_000 }).toBe(2_050)
    expect(await all(path)).toEqual([...Array.from({ length: 50 }, (_, i) => record(i)), ...big])
    await ledger.close()
  })

  it('filters by time, skips lines that are not records, and sums per group', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-ledger-'))
    const path = join(dir, 'usage.jsonl')
    const lines = [record(1), record(2), record(3), record(4)].map((r) => JSON.stringify(r))
    writeFileSync(path, `${lines[0]}\nnot json\n\n${lines[1]}\n{"no":"time"}\n${lines[2]}\n${lines[3]}`)
    expect(await all(path)).toHaveLength(4)
    const since = await all(path, new Date(Date.UTC(2026, 0, 1, 0, 3)))
    expect(since.map((r) => r.promptTokens)).toEqual([13, 14])
    const rows = summarize(await all(path), 'model')
    expect(rows).toEqual([
      {
        group: 'gpt-4o-mini',
        requests: 2,
        promptTokens: 26,
        completionTokens: 10,
        tokens: 36,
        usd: expect.closeTo(0.006, 9),
      },
      {
        group: 'gpt-4o',
        requests: 2,
        promptTokens: 24,
        completionTokens: 10,
        tokens: 34,
        usd: expect.closeTo(0.004, 9),
      },
    ])
    expect(await all(join(dir, 'missing.jsonl'))).toEqual([])
  })

  it('closes a torn last line on open, so that the next record never merges with it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-ledger-'))
    const path = join(dir, 'usage.jsonl')
    // What a crash (or a full disk) mid-write leaves: a whole record, then half of the next one.
    const fragment = JSON.stringify(record(2)).slice(0, 40)
    writeFileSync(path, `${JSON.stringify(record(1))}\n${fragment}`)
    const ledger = new Ledger({ path, maxSize: 1e6, keep: 1 })
    ledger.append(record(3))
    await ledger.close()
    // Line by line: the fragment alone on its line, then the new record whole on its own.
    expect(readFileSync(path, 'utf8')).toBe(
      `${JSON.stringify(record(1))}\n${fragment}\n${JSON.stringify(record(3))}\n`,
    )
    // The repair is reported (the gateway logs it), once.
    writeFileSync(path, fragment)
    const repaired: string[] = []
    const again = new Ledger({ path, maxSize: 1e6, keep: 1 })
    again.observe({ repaired: (p) => repaired.push(p) })
    again.append(record(4))
    again.append(record(5))
    await again.close()
    expect(repaired).toEqual([path])
    expect(readFileSync(path, 'utf8')).toBe(
      `${fragment}\n${JSON.stringify(record(4))}\n${JSON.stringify(record(5))}\n`,
    )
    writeFileSync(path, `${JSON.stringify(record(1))}\n${fragment}\n${JSON.stringify(record(3))}\n`)
    const skipped: SkippedLine[] = []
    const records: LedgerRecord[] = []
    for await (const r of readLedger(path, undefined, { onSkip: (s) => skipped.push(s) })) records.push(r)
    expect(records).toEqual([record(1), record(3)])
    expect(skipped).toEqual([{ file: path, line: 2, reason: expect.stringContaining('torn') }])
  })

  it('recovers a record an older version appended to a torn line, and reports the fragment', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-ledger-'))
    const path = join(dir, 'usage.jsonl')
    const merged = `${JSON.stringify(record(2)).slice(0, 33)}${JSON.stringify(record(3))}`
    writeFileSync(path, `${JSON.stringify(record(1))}\n${merged}\n{"time":"x"}\nnot json\n`)
    const skipped: SkippedLine[] = []
    const records: LedgerRecord[] = []
    for await (const r of readLedger(path, undefined, { onSkip: (s) => skipped.push(s) })) records.push(r)
    expect(records).toEqual([record(1), record(3)])
    expect(skipped.map((s) => s.line)).toEqual([2, 3, 4])
    expect(skipped[0]!.reason).toMatch(/33 bytes.*kept/)
    expect(skipped[2]!.reason).toBe('not JSON')
  })

  it('an unwritable path fails at open with a message that says why', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-ledger-'))
    writeFileSync(join(dir, 'blocker'), '')
    const underAFile = new Ledger({ path: join(dir, 'blocker', 'usage.jsonl'), maxSize: 1e6, keep: 1 })
    await expect(underAFile.open()).rejects.toThrow(
      new LedgerPathError(
        `cannot create ${join(dir, 'blocker', 'usage.jsonl')}: ${join(dir, 'blocker')} is a file, not a directory`,
      ),
    )
    const aDirectory = new Ledger({ path: dir, maxSize: 1e6, keep: 1 })
    await expect(aDirectory.open()).rejects.toThrow(/it is a directory/)
  })

  it('/dev/full: records wait in a bounded buffer, overflow is counted, and all kept records are written once the path works', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-ledger-'))
    const path = join(dir, 'usage.jsonl')
    symlinkSync('/dev/full', path)
    const tenLines = Array.from({ length: 10 }, (_, i) => `${JSON.stringify(record(10 + i))}\n`).join('')
    const ledger = new Ledger({ path, maxSize: 1e9, keep: 1, bufferBytes: tenLines.length, retryMs: 20 })
    const events: string[] = []
    let dropped = 0
    ledger.observe({
      failing: (e) => events.push(`failing ${(e as NodeJS.ErrnoException).code}`),
      recovered: (r) => events.push(`recovered ${r.written} ${r.dropped}`),
      dropped: (n) => {
        dropped += n
      },
    })
    await ledger.open()
    for (let i = 10; i < 40; i++) ledger.append(record(i))
    await ledger.flush()
    expect(ledger.failing).toBe(true)
    expect(ledger.health()).toMatchObject({ state: 'failing', buffered: 10, dropped: 20 })
    expect(ledger.health().lastError).toMatch(/ENOSPC/)
    expect(dropped).toBe(20)
    // Retries keep failing without a new log-worthy transition.
    await new Promise((r) => setTimeout(r, 100))
    expect(events).toEqual(['failing ENOSPC'])
    // The path becomes a real file (the disk "recovers"): the buffer is written, oldest first.
    rmSync(path)
    await expect.poll(() => ledger.failing, { timeout: 5_000 }).toBe(false)
    ledger.append(record(99))
    await ledger.close()
    expect(events).toEqual(['failing ENOSPC', 'recovered 10 20'])
    expect(await all(path)).toEqual([...Array.from({ length: 10 }, (_, i) => record(10 + i)), record(99)])
  })

  it.skipIf(!canMountSmallDisk)(
    'a full disk (tmpfs): a cut write is cut back to its last whole line, and every record is written once there is room',
    async () => {
      const disk = mountSmallDisk(256 * 1024)!
      try {
        const path = join(disk.dir, 'usage.jsonl')
        const ledger = new Ledger({ path, maxSize: 1e9, keep: 1, retryMs: 20 })
        const events: string[] = []
        ledger.observe({
          failing: (e) => events.push(`failing ${(e as NodeJS.ErrnoException).code}`),
          recovered: (r) => events.push(`recovered ${r.written}`),
        })
        await ledger.open()
        disk.fill(4096)
        // ~330 bytes each: 200 records are 66 KB, far more than the 4 KB left.
        for (let i = 0; i < 200; i++) ledger.append(record(i, { model: `m${'x'.repeat(100)}` }))
        await ledger.flush()
        expect(ledger.failing).toBe(true)
        const text = readFileSync(path, 'utf8')
        // Some whole lines made it; nothing torn was left behind.
        expect(text.length).toBeGreaterThan(0)
        expect(text.endsWith('\n')).toBe(true)
        const onDisk = text.trimEnd().split('\n').length
        expect(ledger.health().buffered).toBe(200 - onDisk)
        disk.free()
        await expect.poll(() => ledger.failing, { timeout: 5_000 }).toBe(false)
        await ledger.close()
        expect(events).toEqual(['failing ENOSPC', `recovered ${200 - onDisk}`])
        // Every record once, in order.
        expect(await all(path)).toEqual(
          Array.from({ length: 200 }, (_, i) => record(i, { model: `m${'x'.repeat(100)}` })),
        )
      } finally {
        disk.unmount()
      }
    },
  )
})
