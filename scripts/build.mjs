// Compiles src/ to dist/ with tsc, copies the Lua scripts beside the modules that load them, and
// builds the dashboard (dashboard/, with Vite) into dist/dashboard, which the admin plugins serve.
import { execFileSync } from 'node:child_process'
import { cpSync, readdirSync, rmSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
rmSync(join(root, 'dist'), { recursive: true, force: true })
execFileSync(
  process.execPath,
  [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.json')],
  {
    stdio: 'inherit',
  },
)

function copyLua(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) copyLua(path)
    else if (entry.name.endsWith('.lua')) cpSync(path, join(root, 'dist', relative(join(root, 'src'), path)))
  }
}
copyLua(join(root, 'src'))

// Vite 8 needs Node 20.19 or later; the rest of sluice runs on any Node 20. On an older Node the
// build goes on without the dashboard, and /dashboard says that it is not built.
const [major, minor] = process.versions.node.split('.').map(Number)
if (major > 20 || (major === 20 && minor >= 19)) {
  const { build } = await import('vite')
  await build({ configFile: join(root, 'dashboard/vite.config.ts'), logLevel: 'warn' })
} else {
  console.warn(
    `sluice build: the dashboard needs Node >= 20.19 to build (Vite 8), this is ${process.version}: built without it`,
  )
}
