import { Writable } from 'node:stream'
import { Ajv2020 } from 'ajv/dist/2020.js'
import { type Dispatcher, fetch } from 'undici'
import {
  type AdminServer,
  type AdminServerOptions,
  generateAdminToken,
  startAdminServer,
} from '../../../src/control/admin/index.js'
import type { Control } from '../../../src/control/index.js'
import { type ControlHarness, postgresHarness, sqliteHarness } from '../harness.js'

/** The admin suites run unchanged on both databases. */
export const DATABASES: [string, () => ControlHarness][] = [
  ['SQLite', sqliteHarness],
  ['PostgreSQL', postgresHarness],
]

export const TIERS = ['anonymous', 'authenticated', 'premium', 'service']

export interface Answer {
  status: number
  headers: Headers
  text: string
  // biome-ignore lint/suspicious/noExplicitAny: test answers are inspected field by field.
  json: any
}

export interface CallOptions {
  body?: unknown
  /** A raw body, sent as is. */
  rawBody?: string
  /** The bearer token (default: the fixture's); null sends no Authorization header. */
  token?: string | null
  headers?: Record<string, string>
  dispatcher?: Dispatcher
}

/** A real admin server (its own Fastify, on a free port) over a real Control. */
export interface AdminFixture {
  server: AdminServer
  token: string
  call(method: string, path: string, options?: CallOptions): Promise<Answer>
  close(): Promise<void>
}

export async function callAdmin(
  base: string,
  token: string | null,
  method: string,
  path: string,
  o: CallOptions = {},
) {
  const headers: Record<string, string> = { ...o.headers }
  const bearer = o.token === undefined ? token : o.token
  if (bearer !== null) headers.authorization = `Bearer ${bearer}`
  let body: string | undefined = o.rawBody
  if (o.body !== undefined) {
    body = JSON.stringify(o.body)
    headers['content-type'] ??= 'application/json'
  }
  const response = await fetch(base + path, { method, headers, body, dispatcher: o.dispatcher })
  const text = await response.text()
  let json: unknown
  try {
    json = text === '' ? undefined : JSON.parse(text)
  } catch {
    json = undefined
  }
  return { status: response.status, headers: response.headers as unknown as Headers, text, json } as Answer
}

export async function startAdmin(
  control: Control,
  options: Partial<AdminServerOptions> = {},
): Promise<AdminFixture> {
  const { token } = generateAdminToken()
  const server = await startAdminServer({
    control,
    auth: { token },
    tiers: TIERS,
    logger: false,
    ...options,
  })
  return {
    server,
    token,
    call: (method, path, o) => callAdmin(server.url, token, method, path, o),
    close: () => server.close(),
  }
}

/** Collects pino's JSON lines in memory (to search them for secrets). */
export function captureLogs(): { destination: Writable & { write(line: string): boolean }; text(): string } {
  const lines: string[] = []
  const destination = new Writable({
    write(chunk, _encoding, done) {
      lines.push(String(chunk))
      done()
    },
  })
  return { destination, text: () => lines.join('') }
}

/**
 * Validates answers against the document's own schemas (JSON Schema 2020-12, as OpenAPI 3.1
 * says): `check('Key', value)` throws with ajv's errors when they disagree.
 */
export function documentValidator(document: Record<string, unknown>) {
  const ajv = new Ajv2020({ strict: false, validateFormats: false, allErrors: true })
  ajv.addSchema({ ...document, $id: 'admin' })
  return {
    errors(component: string, value: unknown): string | undefined {
      const validate = ajv.getSchema(`admin#/components/schemas/${component}`)
      if (validate === undefined) return `no component ${component}`
      return validate(value) ? undefined : ajv.errorsText(validate.errors)
    },
  }
}
