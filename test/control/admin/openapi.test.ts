import { readFileSync } from 'node:fs'
import { Validator } from '@seriousme/openapi-schema-validator'
import { Ajv2020 } from 'ajv/dist/2020.js'
import Fastify, { type FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { adminApi, generateAdminToken } from '../../../src/control/admin/index.js'
import { type Control, openControl } from '../../../src/control/index.js'
import { sqliteHarness } from '../harness.js'
import { callAdmin } from './harness.js'

// biome-ignore lint/suspicious/noExplicitAny: the document is walked as plain JSON.
type Doc = any

/** `/admin/v1/keys/{id}` → a regex of the URLs it serves. */
function templateMatcher(template: string): RegExp {
  return new RegExp(`^${template.replace(/\{[^}]+\}/g, '[^/?]+')}(\\?.*)?$`)
}

/** The `curl` commands of a Markdown file: method, URL path and JSON body (`-d '…'`). */
function curlExamples(markdown: string): { method: string; path: string; body?: unknown; line: string }[] {
  const commands = markdown
    .replace(/\\\n\s*/g, ' ')
    .split('\n')
    .filter((line) => line.trim().startsWith('curl '))
  return commands.map((line) => {
    const method = /-X\s+([A-Z]+)/.exec(line)?.[1]
    const data = /(?:-d|--data)\s+'([^']*)'/.exec(line)?.[1]
    const url = /https?:\/\/[^\s'"]+?(\/admin\/v1\/[^\s'"]*)/.exec(line)?.[1] ?? ''
    return {
      method: method ?? (data === undefined ? 'GET' : 'POST'),
      path: url.replace(/\$\{?[A-Z_]+\}?/g, 'abcdefghij'),
      body: data === undefined ? undefined : JSON.parse(data),
      line,
    }
  })
}

describe('openapi.json', () => {
  const harness = sqliteHarness()
  const { token } = generateAdminToken()
  const registered: { method: string; url: string }[] = []
  let control: Control
  let app: FastifyInstance
  let base: string
  let doc: Doc
  let ajv: Ajv2020

  beforeAll(async () => {
    await harness.setup()
    control = await openControl({ url: harness.url() })
    app = Fastify()
    app.addHook('onRoute', (route) => {
      for (const method of [route.method].flat()) registered.push({ method, url: route.url })
    })
    await app.register(adminApi, { control, auth: { token }, tiers: ['service', 'premium'] })
    await app.listen({ host: '127.0.0.1', port: 0 })
    const address = app.server.address()
    base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`
    const answer = await callAdmin(base, token, 'GET', '/admin/v1/openapi.json')
    expect(answer.status).toBe(200)
    doc = answer.json
    ajv = new Ajv2020({ strict: false, validateFormats: false, allErrors: true })
    ajv.addSchema({ ...doc, $id: 'admin' })
  })
  afterAll(async () => {
    await app?.close()
    await control?.close()
    await harness.teardown()
  })

  const bodySchema = (method: string, template: string) =>
    doc.paths[template]?.[method.toLowerCase()]?.requestBody?.content['application/json'].schema.$ref as
      | string
      | undefined
  const validatorFor = (ref: string) => ajv.getSchema(`admin${ref}`)!

  it('is a valid OpenAPI 3.1 document', async () => {
    expect(doc.openapi).toBe('3.1.0')
    const result = await new Validator().validate(doc)
    expect(result.errors ?? []).toEqual([])
    expect(result.valid).toBe(true)
    // Every component compiles: no dangling $ref.
    for (const name of Object.keys(doc.components.schemas)) {
      expect(() => validatorFor(`#/components/schemas/${name}`), name).not.toThrow()
    }
    expect(JSON.stringify(doc)).not.toContain('$defs')
  })

  it('describes every route the plugin serves, and nothing else', () => {
    const served = registered
      .filter((r) => r.url.startsWith('/admin/v1') && r.method !== 'HEAD')
      .map((r) => `${r.method} ${r.url.replace(/:([A-Za-z]+)/g, '{$1}')}`)
      .sort()
    const documented = Object.entries(doc.paths)
      .flatMap(([path, item]) => Object.keys(item as object).map((m) => `${m.toUpperCase()} ${path}`))
      .sort()
    expect(served.length).toBeGreaterThanOrEqual(22)
    expect(documented).toEqual(served)
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, operation] of Object.entries(item as Record<string, Doc>)) {
        expect(operation.responses['401'], `${method} ${path}`).toBeDefined()
        expect(operation.responses['429'].headers['Retry-After']).toBeDefined()
        for (const param of (path.match(/\{(\w+)\}/g) ?? []).map((p) => p.slice(1, -1))) {
          expect(operation.parameters.some((p: Doc) => p.in === 'path' && p.name === param)).toBe(true)
        }
      }
    }
  })

  it('accepts each request example of the document, and so does the API', async () => {
    const created = await callAdmin(base, token, 'POST', '/admin/v1/teams', { body: { id: 'research' } })
    expect(created.status).toBe(201)
    let checked = 0
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, operation] of Object.entries(item as Record<string, Doc>)) {
        const ref = operation.requestBody?.content['application/json'].schema.$ref
        if (ref === undefined) continue
        const component = doc.components.schemas[ref.split('/').pop()]
        expect(component.examples?.length, `${method} ${path} has an example`).toBeGreaterThan(0)
        for (const example of component.examples ?? []) {
          const validate = validatorFor(ref)
          expect(validate(example), `${method} ${path}: ${ajv.errorsText(validate.errors)}`).toBe(true)
          checked++
        }
      }
    }
    expect(checked).toBeGreaterThanOrEqual(6)
    // The create example goes through the real API.
    const example = doc.components.schemas.KeyCreate.examples[0]
    const answer = await callAdmin(base, token, 'POST', '/admin/v1/keys', { body: example })
    expect(answer.status, answer.text).toBe(201)
  })

  it('refuses what the API refuses (zod and the document agree on bad input)', async () => {
    const validate = validatorFor(bodySchema('POST', '/admin/v1/keys')!)
    const bad = [
      { name: 'x' },
      { name: 'x', tier: 'service', budgets: { usd: { limit: -5, period: 'day' } } },
      { name: 'x', tier: 'service', budgets: { usd: { limit: 5, period: 'year' } } },
      { name: 'x', tier: 'service', limits: { t: { kind: 'leakyBucket', limit: 1 } } },
      {
        name: 'x',
        tier: 'service',
        limits: { t: { kind: 'fixedWindow', limit: 1, window: '1m', extra: 1 } },
      },
      { name: 'x', tier: 'service', team: 'Not A Slug' },
      { name: 'x', tier: 'service', colour: 'red' },
    ]
    for (const body of bad) {
      expect(validate(body), JSON.stringify(body)).toBe(false)
      const answer = await callAdmin(base, token, 'POST', '/admin/v1/keys', { body })
      expect(answer.status, JSON.stringify(body)).toBe(400)
    }
  })

  it('covers the curl examples of docs/admin.md: each names a documented route, each body fits its schema', () => {
    const markdown = readFileSync(new URL('../../../docs/admin.md', import.meta.url), 'utf8')
    const examples = curlExamples(markdown)
    expect(examples.length).toBeGreaterThanOrEqual(8)
    const templates = Object.keys(doc.paths).map((t) => ({ template: t, pattern: templateMatcher(t) }))
    for (const example of examples) {
      const match = templates.find(
        (t) => t.pattern.test(example.path) && doc.paths[t.template][example.method.toLowerCase()],
      )
      expect(match, example.line).toBeDefined()
      if (example.body === undefined) continue
      const ref = bodySchema(example.method, match!.template)
      expect(ref, example.line).toBeDefined()
      const validate = validatorFor(ref!)
      expect(validate(example.body), `${example.line}: ${ajv.errorsText(validate.errors)}`).toBe(true)
    }
  })
})
