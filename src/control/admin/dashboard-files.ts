/**
 * The built dashboard, read once into memory: a map from URL path to file. Requests are answered
 * from that map, so no request path ever reaches the file system — there is nothing to traverse.
 * Only regular files inside the build folder are taken (no symbolic links, no dot files).
 */
import { createHash } from 'node:crypto'
import { existsSync, lstatSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { brotliCompressSync, constants, gzipSync } from 'node:zlib'

export interface DashboardFile {
  body: Buffer
  /** Compressed forms, for text files worth compressing. */
  br?: Buffer
  gzip?: Buffer
  contentType: string
  /** A strong validator of the content (each encoding gets its own suffix). */
  etag: string
  cacheControl: string
}

const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  mjs: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  json: 'application/json; charset=utf-8',
  map: 'application/json; charset=utf-8',
  svg: 'image/svg+xml',
  png: 'image/png',
  ico: 'image/x-icon',
  txt: 'text/plain; charset=utf-8',
  woff2: 'font/woff2',
}
const COMPRESSIBLE = new Set(['html', 'js', 'mjs', 'css', 'json', 'map', 'svg', 'txt'])
/** Vite names bundled assets `assets/<name>-<hash>.<ext>`: their content never changes under a name. */
const HASHED_ASSET = /^assets\/[^/]+-[A-Za-z0-9_-]{8,}\.[a-z0-9]+$/
const MAX_FILES = 500
const MAX_BYTES = 20 * 1024 * 1024

export const IMMUTABLE = 'public, max-age=31536000, immutable'
/** The page that names the current asset files, and carries the answer of no cache. */
export const NO_STORE = 'no-store'

/** The places the build may be: beside the compiled code (the package), or dist/ of a checkout. */
export function defaultDashboardRoot(): string {
  const candidates = [
    fileURLToPath(new URL('../../dashboard/', import.meta.url)),
    fileURLToPath(new URL('../../../dist/dashboard/', import.meta.url)),
  ]
  return candidates.find((dir) => existsSync(join(dir, 'index.html'))) ?? candidates[0]!
}

/**
 * Every file of the build, by its path below the build folder (`index.html`, `assets/x-1a2b.js`),
 * or undefined when there is no build (no index.html). `transformIndex` may rewrite the page.
 */
export function loadDashboard(
  root: string,
  transformIndex: (html: string) => string = (html) => html,
): Map<string, DashboardFile> | undefined {
  if (!existsSync(join(root, 'index.html'))) return undefined
  const files = new Map<string, DashboardFile>()
  let bytes = 0
  const walk = (dir: string, prefix: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.name.startsWith('.')) continue
      const path = join(dir, entry.name)
      const stat = lstatSync(path)
      if (stat.isDirectory()) walk(path, `${prefix}${entry.name}/`)
      else if (stat.isFile()) {
        if (files.size >= MAX_FILES)
          throw new Error(`the dashboard build at ${root} holds more than ${MAX_FILES} files`)
        const name = `${prefix}${entry.name}`
        let body: Buffer = readFileSync(path)
        if (name === 'index.html') body = Buffer.from(transformIndex(body.toString('utf8')), 'utf8')
        bytes += body.length
        if (bytes > MAX_BYTES)
          throw new Error(`the dashboard build at ${root} is larger than ${MAX_BYTES} bytes`)
        files.set(name, fileOf(name, body))
      }
      // Symbolic links, sockets and the like are left out: only what the build wrote is served.
    }
  }
  walk(root, '')
  return files
}

/**
 * Compressed forms by content hash: Brotli at its best level takes ~150 ms for the dashboard's
 * script, paid once per process however many servers load the same build.
 */
const compressed = new Map<string, { br: Buffer; gzip: Buffer }>()

function fileOf(name: string, body: Buffer): DashboardFile {
  const ext = /\.([a-z0-9]+)$/i.exec(name)?.[1]?.toLowerCase() ?? ''
  const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`
  const file: DashboardFile = {
    body,
    contentType: TYPES[ext] ?? 'application/octet-stream',
    etag,
    cacheControl: name === 'index.html' ? NO_STORE : HASHED_ASSET.test(name) ? IMMUTABLE : 'no-cache',
  }
  if (COMPRESSIBLE.has(ext) && body.length > 1024) {
    let forms = compressed.get(etag)
    if (forms === undefined) {
      forms = {
        br: brotliCompressSync(body, {
          params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: body.length },
        }),
        gzip: gzipSync(body, { level: 9 }),
      }
      if (compressed.size >= MAX_FILES) compressed.clear()
      compressed.set(etag, forms)
    }
    file.br = forms.br
    file.gzip = forms.gzip
  }
  return file
}

/** The encoding to answer with, from Accept-Encoding (q=0 refuses one). */
export function pickEncoding(header: string | undefined, file: DashboardFile): 'br' | 'gzip' | undefined {
  if (header === undefined || file.br === undefined) return undefined
  const accepted = new Map<string, number>()
  for (const part of header.split(',')) {
    const [name, ...params] = part.trim().toLowerCase().split(';')
    const q = params.map((p) => /^\s*q=([0-9.]+)\s*$/.exec(p)?.[1]).find((v) => v !== undefined)
    accepted.set(name!, q === undefined ? 1 : Number(q))
  }
  const ok = (name: string) => (accepted.get(name) ?? accepted.get('*') ?? 0) > 0
  if (ok('br')) return 'br'
  if (ok('gzip')) return 'gzip'
  return undefined
}
