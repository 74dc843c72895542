// The gateway alone in a plain Node process (no tsx, no IPC), for counting its instructions under
// valgrind (bench/gateway-instructions.ts): argv[2] is JSON { root, config, env } — the sluice
// checkout whose dist/ to run (a file URL ending in /), startGateway's input and its env. Prints
// "ready <url>" when listening; on SIGTERM closes the gateway and exits 0, so that valgrind writes
// its counts.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const { root, config, env } = JSON.parse(process.argv[2])
const { startGateway } = await import(new URL('dist/gateway/index.js', root).href)
const ledgerDir = mkdtempSync(join(tmpdir(), 'sluice-instr-'))
const gateway = await startGateway({ ...config, ledger: { path: join(ledgerDir, 'usage.jsonl') } }, { env })
process.on('SIGTERM', () => {
  gateway.close().then(
    () => {
      rmSync(ledgerDir, { recursive: true, force: true })
      process.exit(0)
    },
    () => process.exit(1),
  )
})
process.stdout.write(`ready ${gateway.url}\n`)
