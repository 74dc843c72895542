// Which test files need which service, read from the files themselves: a file needs a service when
// it lies under one of the service's paths or imports (directly or through other test modules) one
// of its helpers. No list of test files is kept by hand.
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve, sep } from 'node:path'

export interface NeededBy {
  /** Test files under these paths (relative to the repository, `/`-separated, prefix match). */
  paths?: readonly string[]
  /** Test files that import one of these modules, directly or through other test modules. */
  helpers?: readonly string[]
}

export interface ServiceNeeds {
  name: string
  neededBy: NeededBy
}

const IMPORT_PATTERNS = [
  // import x from '…', import { a, b } from '…', export * from '…' (not `import type`: erased)
  /\b(?:import|export)\s+(?!type\s)[^'"`;]*?\bfrom\s*['"]([^'"]+)['"]/g,
  /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g, // import('…')
  /\bimport\s+['"]([^'"]+)['"]/g, // import '…'
]

/** The relative modules a source file imports at run time, resolved to files. */
function importsOf(file: string): string[] {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch {
    return []
  }
  const found: string[] = []
  for (const pattern of IMPORT_PATTERNS) {
    for (const match of text.matchAll(pattern)) {
      const specifier = match[1]!
      if (!specifier.startsWith('.')) continue
      // TypeScript sources import './x.js' for './x.ts'.
      found.push(resolve(dirname(file), specifier.replace(/\.js$/, '.ts')))
    }
  }
  return found
}

/** Absolute paths of every `*.test.ts` under `test/` (what vitest.config.ts includes). */
export function allTestFiles(root: string): string[] {
  const files: string[] = []
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name)
      if (entry.isDirectory()) {
        if (entry.name !== 'node_modules') walk(path)
      } else if (entry.name.endsWith('.test.ts')) files.push(path)
    }
  }
  walk(join(root, 'test'))
  return files.sort()
}

/** Maps each test file to the names of the services it needs. */
export function servicesNeeded(
  root: string,
  testFiles: readonly string[],
  services: readonly ServiceNeeds[],
): Map<string, string[]> {
  const importsCache = new Map<string, string[]>()
  // Every module reachable from `file` through relative imports inside test/ (src/ never imports
  // test helpers, so it is not followed).
  const reachable = (file: string): string[] => {
    const seen = new Set<string>([file])
    const queue = [file]
    for (let next = queue.pop(); next !== undefined; next = queue.pop()) {
      let imports = importsCache.get(next)
      if (!imports) {
        imports = importsOf(next).filter((m) => toRepoPath(root, m).startsWith('test/'))
        importsCache.set(next, imports)
      }
      for (const imported of imports) {
        if (seen.has(imported)) continue
        seen.add(imported)
        queue.push(imported)
      }
    }
    return [...seen].map((m) => toRepoPath(root, m))
  }
  const result = new Map<string, string[]>()
  for (const file of testFiles) {
    const path = toRepoPath(root, file)
    const modules = reachable(resolve(root, file))
    const names = services
      .filter(({ neededBy }) => {
        if (neededBy.paths?.some((prefix) => path.startsWith(prefix))) return true
        return neededBy.helpers?.some((helper) => modules.includes(helper)) ?? false
      })
      .map((s) => s.name)
    result.set(path, names)
  }
  return result
}

export function toRepoPath(root: string, file: string): string {
  return relative(root, resolve(root, file)).split(sep).join('/')
}
