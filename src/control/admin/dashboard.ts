/**
 * The dashboard's files at /dashboard: a Fastify plugin serving the build (`npm run build` writes
 * dist/dashboard) from memory, with the content type, the caching (hashed assets immutable, the
 * page never stored) and a strict Content-Security-Policy on every answer: scripts, styles and
 * connections from this origin only, nothing inline, no frames. The dashboard itself talks only to
 * /admin/v1 (see docs/dashboard.md).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { type DashboardFile, defaultDashboardRoot, loadDashboard, pickEncoding } from './dashboard-files.js'

export const DASHBOARD_PATH = '/dashboard'

export interface DashboardOptions {
  /** The build folder (default: dist/dashboard of this package). */
  root?: string
  /**
   * Whether the admin API beside it has a token: `off` makes the page say how to set one at once,
   * without a sign-in. Absent: the page learns it from the API's answer to a sign-in.
   */
  adminApi?: 'on' | 'off'
}

export const DASHBOARD_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "font-src 'self'",
  "connect-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ')

const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': DASHBOARD_CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=(), payment=()',
}

const MISSING_BUILD = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>sluice dashboard: not built</title></head>
<body><main>
<h1>The sluice dashboard is not built</h1>
<p>This server has no dashboard files to serve. In a checkout of sluice, run <code>npm run build</code>
(it builds the dashboard into <code>dist/dashboard</code>), then restart the server.
The packages published for sluice ship the dashboard built.</p>
<p>The admin API at <code>/admin/v1</code> works without it (docs/admin.md).</p>
</main></body></html>
`

function escapeAttribute(value: string): string {
  return value.replace(/[&"<>]/g, (c) => `&#${c.charCodeAt(0)};`)
}

/** The page with what the server knows of the admin API (read by the app at start). */
function withAdminState(state: 'on' | 'off' | undefined) {
  return (html: string) =>
    state === undefined
      ? html
      : html.replace('</head>', `<meta name="sluice-admin-api" content="${escapeAttribute(state)}"></head>`)
}

function etagMatches(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false
  if (header.trim() === '*') return true
  const bare = etag.slice(1, -1)
  return header.split(',').some((tag) => {
    const t = tag.trim().replace(/^W\//, '').replace(/^"|"$/g, '')
    return t === bare || t.startsWith(`${bare}-`)
  })
}

function sendFile(request: FastifyRequest, reply: FastifyReply, file: DashboardFile) {
  const encoding = pickEncoding(request.headers['accept-encoding'], file)
  const etag = encoding === undefined ? file.etag : `${file.etag.slice(0, -1)}-${encoding}"`
  reply.headers(SECURITY_HEADERS).header('cache-control', file.cacheControl).header('etag', etag)
  if (file.br !== undefined) reply.header('vary', 'accept-encoding')
  if (etagMatches(request.headers['if-none-match'], file.etag)) return reply.code(304).send()
  const body = encoding === undefined ? file.body : file[encoding]!
  if (encoding !== undefined) reply.header('content-encoding', encoding)
  return reply.code(200).type(file.contentType).send(body)
}

function sendText(reply: FastifyReply, status: number, html: string) {
  return reply
    .code(status)
    .headers(SECURITY_HEADERS)
    .header('cache-control', 'no-store')
    .type('text/html; charset=utf-8')
    .send(html)
}

/**
 * Serves the dashboard at /dashboard/ (and its files below it). Register it at the root of the app
 * that serves /admin/v1 (the page calls the API on its own origin): `app.register(dashboardRoutes)`,
 * or `adminConsole` for both at once. Only GET and HEAD; the build is read once, at registration.
 */
export async function dashboardRoutes(
  fastify: FastifyInstance,
  options: DashboardOptions = {},
): Promise<void> {
  if (fastify.prefix !== '') {
    throw new Error(`register dashboardRoutes at the root of the app, not under "${fastify.prefix}"`)
  }
  const root = options.root ?? defaultDashboardRoot()
  const files = loadDashboard(root, withAdminState(options.adminApi))
  const notFound = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Not found</title></head><body><main><h1>Not found</h1><p>The dashboard is at <a href="${DASHBOARD_PATH}/">${DASHBOARD_PATH}/</a>.</p></main></body></html>\n`

  await fastify.register(async (scope) => {
    const page = (request: FastifyRequest, reply: FastifyReply, path: string) => {
      if (files === undefined) return sendText(reply, 503, MISSING_BUILD)
      const file = files.get(path)
      return file === undefined ? sendText(reply, 404, notFound) : sendFile(request, reply, file)
    }
    // Relative, so that the page works under any prefix a reverse proxy adds.
    scope.get(DASHBOARD_PATH, (_request, reply) =>
      reply.code(308).headers(SECURITY_HEADERS).header('location', 'dashboard/').send(),
    )
    scope.get(`${DASHBOARD_PATH}/`, (request, reply) => page(request, reply, 'index.html'))
    scope.get(`${DASHBOARD_PATH}/*`, (request, reply) => {
      // The raw path, not a decoded one: names are matched exactly against what the build wrote.
      const raw = request.url.split('?')[0]!.slice(DASHBOARD_PATH.length + 1)
      return page(request, reply, raw === '' ? 'index.html' : raw)
    })
    // Other methods: 405 from the headers, before any body is read.
    for (const url of [DASHBOARD_PATH, `${DASHBOARD_PATH}/`, `${DASHBOARD_PATH}/*`]) {
      scope.route({
        method: ['POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'],
        url,
        onRequest: async (request, reply) => {
          if (!request.raw.complete) reply.header('connection', 'close')
          reply
            .code(405)
            .headers(SECURITY_HEADERS)
            .header('allow', 'GET, HEAD')
            .type('text/plain; charset=utf-8')
          return reply.send('405: the dashboard is read with GET\n')
        },
        handler: async () => undefined,
      })
    }
  })
}
