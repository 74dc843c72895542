// The gateway alone in a plain Node process (no tsx, no IPC), for counting its instructions under
// valgrind (bench/gateway-instructions.ts): argv[2] is JSON { root, config, env } — the sluice
// checkout whose dist/ to run (a file URL ending in /), startGateway's input and its env — or
// { passthrough: upstreamUrl } for the bench's pass-through proxy (passthrough.mjs) instead.
// Prints "ready <url>" when listening; on SIGTERM closes the server and exits 0, so that valgrind
// writes its counts.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startPassThrough } from './passthrough.mjs'

const { root, config, env, passthrough } = JSON.parse(process.argv[2])
let server
let cleanUp = () => {}
if (passthrough !== undefined) {
  server = await startPassThrough(passthrough)
} else {
  const { startGateway } = await import(new URL('dist/gateway/index.js', root).href)
  const ledgerDir = mkdtempSync(join(tmpdir(), 'sluice-instr-'))
  server = await startGateway({ ...config, ledger: { path: join(ledgerDir, 'usage.jsonl') } }, { env })
  cleanUp = () => rmSync(ledgerDir, { recursive: true, force: true })
}
process.on('SIGTERM', () => {
  server.close().then(
    () => {
      cleanUp()
      process.exit(0)
    },
    () => process.exit(1),
  )
})
process.stdout.write(`ready ${server.url}\n`)
