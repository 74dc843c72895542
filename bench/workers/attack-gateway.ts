/**
 * For bench/attacks.ts, in its own process: `startGateway` from a source tree (this one, or
 * another checkout given as `root`, to measure a version before a fix), memory store, no ledger,
 * in front of a mock upstream in another process; or that mock upstream. Reports its URL (and the
 * demo key), stops on "stop".
 */
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

interface Config {
  /** The repository whose sources to run (default: this one). */
  root?: string
  /** `mock`: the mock upstream alone; `gateway` (default): the gateway in front of `upstreamUrl`. */
  role?: 'mock' | 'gateway'
  upstreamUrl?: string
  config?: Record<string, unknown>
}

interface Closable {
  url: string
  demoKey?: string
  close(options?: { deadlineMs?: number }): Promise<void>
}

const { root, role, upstreamUrl, config } = JSON.parse(process.argv[2] ?? '{}') as Config
const repo = root ?? join(fileURLToPath(import.meta.url), '../../..')
const { startGateway, startMockUpstream } = (await import(
  pathToFileURL(join(repo, 'src/gateway/index.ts')).href
)) as {
  startGateway: (config: Record<string, unknown>, options: Record<string, unknown>) => Promise<Closable>
  startMockUpstream: (options: Record<string, unknown>) => Promise<Closable>
}
// The mock runs in a process of its own, as a deployment's model server would: the gateway's
// process then does only the gateway's work.
const served =
  role === 'mock'
    ? await startMockUpstream({ port: 0 })
    : await startGateway(
        {
          port: 0,
          ledger: { path: false },
          ...(upstreamUrl !== undefined && {
            upstreams: { model: { type: 'openai', baseUrl: upstreamUrl } },
            defaultUpstream: 'model',
          }),
          ...config,
        },
        { logger: false, env: { SLUICE_DEMO_KEY: 'sk-sluice-GciNVFvKzAl8zti0z4D62IFU-Nj_bM-ynTnhSzGJNDo' } },
      )
process.send!({ type: 'ready', url: served.url, demoKey: served.demoKey })
process.on('message', (message: { type: string }) => {
  if (message.type === 'memory') {
    // After a full collection (the bench starts this process with --expose-gc): what is still held.
    ;(globalThis as { gc?: () => void }).gc?.()
    process.send!({ type: 'memory', usage: process.memoryUsage() })
  }
  if (message.type === 'stop') {
    void served.close({ deadlineMs: 0 }).finally(() => process.exit(0))
  }
})
