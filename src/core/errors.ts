/** Thrown for a bad option or argument, before any store call; the message names the bad value. */
export class SluiceInputError extends TypeError {
  override name = 'SluiceInputError'
}

/** Strings longer than this are described by their length: a long string may well be a secret. */
const MAX_SHOWN_STRING = 32

/**
 * A bad value named for an error message, without printing anything that may hold a secret:
 * short strings and numbers as they are, a URL with its password masked, a long string by its
 * length, an object by its class or its keys (never its values: a client or an options object
 * may hold a password).
 */
export function describe(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return describeString(value)
    case 'number':
    case 'bigint':
    case 'boolean':
    case 'undefined':
      return String(value)
    case 'symbol':
      return 'a symbol'
    case 'function':
      return value.name ? `a function (${value.name})` : 'a function'
  }
  if (value === null) return 'null'
  if (Array.isArray(value)) {
    if (value.length <= 8 && value.every((v) => v === null || typeof v !== 'object')) {
      return `[${value.map(describe).join(', ')}]`
    }
    return `an array of ${value.length} item${value.length === 1 ? '' : 's'}`
  }
  // The class, when its name can be trusted (mixins may leave another class's constructor).
  const proto = Object.getPrototypeOf(value) as {
    constructor?: { name?: unknown; prototype?: unknown }
  } | null
  const ctor = proto?.constructor
  if (proto !== null && proto !== Object.prototype && ctor?.prototype === proto) {
    if (typeof ctor.name === 'string' && ctor.name !== '') return `an instance of ${ctor.name}`
  }
  const keys = Object.keys(value as object)
  if (keys.length === 0) return 'an empty object'
  const shown = keys.slice(0, 8).map((k) => (/^[A-Za-z_$][\w$]{0,31}$/.test(k) ? k : '…'))
  return `an object with keys ${shown.join(', ')}${keys.length > 8 ? ', …' : ''}`
}

function describeString(value: string): string {
  if (/^[a-z][a-z0-9+.-]*:\/\/[^/]*@/i.test(value)) {
    try {
      const url = new URL(value)
      if (url.password) url.password = '***'
      if (url.username) url.username = url.username.length > MAX_SHOWN_STRING ? '***' : url.username
      return JSON.stringify(url.toString())
    } catch {
      return `a string of ${value.length} characters`
    }
  }
  if (value.length > MAX_SHOWN_STRING) return `a string of ${value.length} characters`
  return JSON.stringify(value)
}

export function requirePositiveFinite(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new SluiceInputError(`${what} must be a positive finite number, got ${describe(value)}`)
  }
  return value
}

export function requirePositiveInteger(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    throw new SluiceInputError(`${what} must be a positive whole number, got ${describe(value)}`)
  }
  return value
}

export function requireCost(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new SluiceInputError(`${what} must be a non-negative finite number, got ${describe(value)}`)
  }
  return value
}
