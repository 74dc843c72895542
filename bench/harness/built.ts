/**
 * The gateway's server processes run sluice from its built output (`dist/`, what `npm start` and
 * the published package run), not from the TypeScript sources through tsx: tsx compiles with
 * esbuild's `keepNames`, which adds a `__name` call to every function created at run time, code
 * users never run (1.8 % of the gateway's CPU in a profile). The bench itself stays on tsx.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, readdirSync, statSync, utimesSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'

/** Written into dist/ after a build, with the time the build started as its mtime. */
const STAMP = '.bench-built'

/** The newest modification time (ms) of the files a build reads. */
function newestInput(root: string): number {
  let newest = 0
  const visit = (path: string) => {
    const stat = statSync(path)
    if (stat.isDirectory()) for (const entry of readdirSync(path)) visit(join(path, entry))
    else newest = Math.max(newest, stat.mtimeMs)
  }
  for (const input of ['src', 'dashboard', 'package.json', 'tsconfig.json', 'scripts/build.mjs']) {
    const path = join(root, input)
    if (existsSync(path)) visit(path)
  }
  return newest
}

/**
 * Builds the checkout at `root` (`node scripts/build.mjs`) unless its dist/ was built by this
 * function after its sources last changed; answers the root as a file URL ending in `/`. Says on
 * stderr which it did.
 */
export function ensureBuilt(root: string): string {
  const dir = resolve(root)
  const stamp = join(dir, 'dist', STAMP)
  const inputs = newestInput(dir)
  if (existsSync(stamp) && statSync(stamp).mtimeMs >= inputs) {
    process.stderr.write(`sluice in ${dir}: dist/ is current, not rebuilt\n`)
  } else {
    process.stderr.write(`sluice in ${dir}: building dist/ (node scripts/build.mjs)…\n`)
    const started = new Date()
    execFileSync(process.execPath, [join(dir, 'scripts/build.mjs')], { cwd: dir, stdio: 'inherit' })
    writeFileSync(stamp, '')
    utimesSync(stamp, started, started)
  }
  return pathToFileURL(`${dir}/`).href
}

/** A module of the built sluice under `root` (a file URL ending in `/`), e.g. `gateway/index.js`. */
export async function builtModule<T = Record<string, unknown>>(root: string, path: string): Promise<T> {
  return (await import(new URL(`dist/${path}`, root).href)) as T
}
