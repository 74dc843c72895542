import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { Ledger, type LedgerRecord, ledgerFiles, readLedger, summarize } from '../../src/gateway/ledger.js'

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

  it('keeps serving when the file cannot be written, reporting the failure once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-ledger-'))
    writeFileSync(join(dir, 'blocker'), '')
    const errors: unknown[] = []
    const ledger = new Ledger({
      path: join(dir, 'blocker', 'usage.jsonl'),
      maxSize: 1e6,
      keep: 1,
      onError: (e) => errors.push(e),
    })
    ledger.append(record(1))
    await ledger.flush()
    ledger.append(record(2))
    await ledger.flush()
    await ledger.close()
    expect(errors).toHaveLength(1)
  })
})
