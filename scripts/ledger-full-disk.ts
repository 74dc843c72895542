/**
 * What the usage ledger does on a full disk, measured: a gateway writes its ledger to a tmpfs that
 * is then filled to the last byte, serves N calls, and the disk is freed again. Prints, per run,
 * the calls served, what /readyz said meanwhile, the records that reached the file, the records
 * dropped (counted), and the ledger's log lines. Needs root (it mounts a tmpfs).
 *
 *   npx tsx scripts/ledger-full-disk.ts [calls=20000] [buffer=16mb]
 */
import { join } from 'node:path'
import { startGateway } from '../src/gateway/index.js'
import { readLedger } from '../src/gateway/ledger.js'
import { mountSmallDisk } from '../test/helpers/small-disk.js'

const calls = Number(process.argv[2] ?? 20_000)
const buffer = process.argv[3]
const CONCURRENCY = 32

const disk = mountSmallDisk(64 * 1024 * 1024)
if (disk === undefined) {
  console.error('cannot mount a tmpfs here (needs root)')
  process.exit(1)
}
const path = join(disk.dir, 'usage.jsonl')
const logs: string[] = []
const gateway = await startGateway(
  {
    port: 0,
    ledger: { path, ...(buffer !== undefined && { buffer }) },
    // Only the ledger is measured: no request limit of the demo key's tier gets in the way.
    tiers: { service: { limits: { hourly: null, burst: null } } },
  },
  { env: {}, logDestination: { write: (line: string) => logs.push(line) } },
)
try {
  disk.fill(0)
  const body = JSON.stringify({
    model: 'gpt-4o-mini',
    messages: [{ role: 'user', content: 'hi' }],
    max_tokens: 8,
  })
  let sent = 0
  let served = 0
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (sent < calls) {
        sent++
        const res = await fetch(`${gateway.url}/v1/chat/completions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${gateway.demoKey}` },
          body,
        })
        await res.text()
        if (res.status === 200) served++
      }
    }),
  )
  await gateway.ledger!.flush()
  const readyz = (await (await fetch(`${gateway.url}/readyz`)).json()) as Record<string, unknown>
  disk.free()
  while (gateway.ledger!.failing) await new Promise((r) => setTimeout(r, 50))
  let written = 0
  for await (const _ of readLedger(path)) written++
  const messages = logs
    .map((l) => (JSON.parse(l) as { msg: string }).msg)
    .filter((m) => m.includes('usage ledger'))
  console.log(
    JSON.stringify(
      {
        calls,
        buffer: buffer ?? '16mb (default)',
        served,
        readyzWhileFull: readyz,
        recordsInFile: written,
        dropped: gateway.ledger!.health().dropped,
        ledgerLogLines: messages,
      },
      null,
      2,
    ),
  )
} finally {
  await gateway.close()
  disk.unmount()
}
