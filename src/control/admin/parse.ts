import type { z } from 'zod'
import { ControlInputError } from '../errors.js'

type Issue = z.core.$ZodIssue

/** `budgets.usd.limit`, `items[2].name`: the path of a field as error messages and `param` name it. */
export function fieldPath(path: readonly PropertyKey[], root: string): string {
  let out = ''
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`
    else out += out === '' ? String(part) : `.${String(part)}`
  }
  return out === '' ? root : out
}

/** The most specific issue: inside a union, the branch that got furthest. */
function deepest(issue: Issue): Issue {
  if (issue.code !== 'invalid_union' || issue.errors.length === 0) return issue
  let best: Issue | undefined
  for (const branch of issue.errors) {
    for (const inner of branch) {
      const candidate = deepest({ ...inner, path: [...issue.path, ...inner.path] } as Issue)
      if (best === undefined || candidate.path.length > best.path.length) best = candidate
    }
  }
  // Only a branch that went deeper than the union itself says more than the union's own message.
  return best !== undefined && best.path.length > issue.path.length ? best : issue
}

/** The bad value, when short and plain enough to help (a number, a short text); never an object. */
function describeInput(input: unknown, message: string): [] | [unknown] {
  if (input === undefined || /\bgot\b/.test(message)) return []
  if (typeof input === 'number' && Number.isNaN(input)) return []
  if (input === null || typeof input === 'number' || typeof input === 'boolean') return [input]
  if (typeof input === 'string') return [input.length > 60 ? `${input.slice(0, 57)}...` : input]
  return []
}

/** One zod issue as the control plane's input error: the field it names, what was expected. */
export function issueError(issue: Issue, root: string): ControlInputError {
  const specific = deepest(issue)
  if (specific.code === 'unrecognized_keys') {
    const key = String(specific.keys[0] ?? '').slice(0, 64)
    return new ControlInputError(fieldPath([...specific.path, key], root), 'is not a known field')
  }
  const field = fieldPath(specific.path, root)
  let message = specific.message
  if (specific.code === 'invalid_type' && specific.input === undefined) message = 'is required'
  else if (/^Invalid input/.test(message) && specific.code === 'invalid_type') {
    message = `must be ${specific.expected === 'object' ? 'an object' : `a ${specific.expected}`}`
  }
  return new ControlInputError(field, message, ...describeInput(specific.input, message))
}

/**
 * Throws when any object in `value` has an own `__proto__` key (JSON.parse makes one from
 * `{"__proto__": …}`). zod drops such keys silently, and code merging objects by assignment
 * (`limits[name] = …`) would change a prototype instead of adding a field: refuse them instead.
 * Iterative, so that a deeply nested body cannot exhaust the stack.
 */
export function refuseProtoKeys(value: unknown, root: string): void {
  // Each entry links to its parent: the path is built only for the error, so a body nested
  // thousands of levels deep costs one entry per value, not one path copy per level.
  type Node = { key: PropertyKey; parent: Node | undefined } | undefined
  const pathOf = (node: Node): PropertyKey[] => {
    const path: PropertyKey[] = []
    for (let n = node; n !== undefined; n = n.parent) path.unshift(n.key)
    return path
  }
  const stack: [unknown, Node][] = [[value, undefined]]
  while (stack.length > 0) {
    const [item, node] = stack.pop()!
    if (typeof item !== 'object' || item === null) continue
    if (Array.isArray(item)) {
      for (let i = 0; i < item.length; i++) stack.push([item[i], { key: i, parent: node }])
      continue
    }
    if (Object.hasOwn(item, '__proto__')) {
      throw new ControlInputError(fieldPath([...pathOf(node), '__proto__'], root), 'is not an allowed name')
    }
    for (const [k, v] of Object.entries(item)) stack.push([v, { key: k, parent: node }])
  }
}

/**
 * Parses `value` with `schema`, or throws a ControlInputError naming the first bad field (what the
 * admin API answers as a 400 with `param`, and the CLI prints). `root` names the whole value
 * (`body`, `query`) when the value itself is wrong.
 */
export function parseInput<S extends z.ZodType>(schema: S, value: unknown, root: string): z.output<S> {
  refuseProtoKeys(value, root)
  const result = schema.safeParse(value, { reportInput: true })
  if (result.success) return result.data
  throw issueError(result.error.issues[0]!, root)
}
