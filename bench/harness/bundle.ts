/**
 * A bench worker bundled into one plain JavaScript file with esbuild, for processes that must run
 * without tsx (under valgrind, its loader's work would be counted too, and its keepNames adds a
 * call to every function made at run time). The Lua scripts the stores read beside their module
 * are copied beside the bundle, as they sit in src/ and dist/.
 */
import { cpSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const root = join(dirname(fileURLToPath(import.meta.url)), '../..')

/** Bundles `entry` (a path from the repository's root) into `dir`; answers the bundle's path. */
export async function bundleWorker(entry: string, dir: string): Promise<string> {
  const bundle = join(dir, `${basename(entry, '.ts')}.mjs`)
  await build({
    entryPoints: [join(root, entry)],
    outfile: bundle,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    logLevel: 'warning',
    // Bundled CommonJS packages (ioredis) need require in an ES module; the import is renamed
    // because bundled modules (the HTTP layer's) import createRequire themselves.
    banner: {
      js: "import { createRequire as bannerRequire } from 'node:module'; const require = bannerRequire(import.meta.url);",
    },
  })
  // RedisStore's scripts and the detectors' (which the HTTP layer loads) share one lua/ folder.
  cpSync(join(root, 'src/store/redis'), dir, { recursive: true, filter: (path) => !path.endsWith('.ts') })
  cpSync(join(root, 'src/store/detectors/lua'), join(dir, 'lua'), { recursive: true })
  return bundle
}
