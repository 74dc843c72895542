/**
 * The dashboard built from this checkout's sources for the browser tests: built once per content
 * of dashboard/ (and of the lock file) into a folder of the system's temp dir, so that test files
 * run alone or together share one build and never touch dist/.
 */
import { createHash } from 'node:crypto'
import { existsSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const SOURCES = join(ROOT, 'dashboard')

function sourceHash(): string {
  const hash = createHash('sha256')
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) =>
      a.name.localeCompare(b.name),
    )) {
      const path = join(dir, entry.name)
      if (entry.isDirectory()) walk(path)
      else hash.update(relative(SOURCES, path)).update('\0').update(readFileSync(path)).update('\0')
    }
  }
  walk(SOURCES)
  hash.update(readFileSync(join(ROOT, 'package-lock.json')))
  return hash.digest('hex').slice(0, 16)
}

/** The folder holding index.html and assets/ of a build of the current sources. */
export async function dashboardBuild(): Promise<string> {
  const dir = join(tmpdir(), `sluice-dashboard-${sourceHash()}`)
  if (existsSync(join(dir, 'index.html'))) return dir
  const staging = `${dir}.${process.pid}.tmp`
  const { build } = await import('vite')
  await build({
    configFile: join(SOURCES, 'vite.config.ts'),
    logLevel: 'error',
    build: { outDir: staging, emptyOutDir: true },
  })
  try {
    renameSync(staging, dir)
  } catch {
    // Another test file built the same sources meanwhile: theirs is as good.
    rmSync(staging, { recursive: true, force: true })
  }
  return dir
}
