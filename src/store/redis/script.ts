import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { algorithms } from '../../core/algorithms/index.js'

/**
 * The batch script, assembled once from .lua files beside this module (in src/ and in dist/):
 * the prelude, every registered algorithm's part (lua/<its file>, see src/core/algorithms/), then
 * the batch driver with its `apply(KEYS, ARGV)`. It is run two ways: as a Redis Function (loaded
 * once per node, so its definitions are made once) and, where Functions are not available, as a
 * script.
 */
const read = (path: string) => readFileSync(new URL(path, import.meta.url), 'utf8')

const PARTS = algorithms().map(
  (a) => `ALGORITHMS['${a.kind}'] = (function()\n${read(`./lua/${a.lua.file}`)}\nend)()\n`,
)
const APPLY_SOURCE = [read('./prelude.lua'), ...PARTS, read('./apply.lua')].join('\n')

/** Names the library and function after the script's text, so that versions never mix. */
const VERSION = createHash('sha1').update(APPLY_SOURCE).digest('hex').slice(0, 12)

/** The script for EVAL/EVALSHA: the definitions, then one batch. */
export const APPLY_LUA = `${APPLY_SOURCE}\nreturn apply(KEYS, ARGV)\n`

/** The function FCALL calls. */
export const APPLY_FUNCTION = `sluice_apply_${VERSION}`

/**
 * The library for FUNCTION LOAD. While a library loads, Redis offers little more than
 * redis.register_function (not even `math`), so the definitions are made on the first call and
 * kept for every later one.
 */
export const APPLY_LIBRARY = [
  `#!lua name=sluice_${VERSION}`,
  'local function define()',
  APPLY_SOURCE,
  'return apply',
  'end',
  'local apply',
  `redis.register_function('${APPLY_FUNCTION}', function(keys, args)`,
  '  if not apply then apply = define() end',
  '  return apply(keys, args)',
  'end)',
  '',
].join('\n')
