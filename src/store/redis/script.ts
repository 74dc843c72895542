import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { algorithms } from '../../core/algorithms/index.js'

/**
 * The batch script, assembled once from .lua files beside this module (in src/ and in dist/):
 * the prelude, every registered algorithm's part (lua/<its file>, see src/core/algorithms/), then
 * the decision steps (decide.lua) and the batch driver with its `apply(KEYS, ARGV)`. It is run two ways: as a Redis Function (loaded
 * once per node, so its definitions are made once) and, where Functions are not available, as a
 * script.
 */
const read = (path: string) => readFileSync(new URL(path, import.meta.url), 'utf8')

const PARTS = algorithms().map(
  (a) => `ALGORITHMS['${a.kind}'] = (function()\n${read(`./lua/${a.lua.file}`)}\nend)()\n`,
)
const APPLY_SOURCE = [
  read('./prelude.lua'),
  ...PARTS,
  read('./decide.lua'),
  read('./lua/busy.lua'),
  read('./apply.lua'),
  read('./lua/queue.lua'),
].join('\n')

/**
 * The script for EVAL/EVALSHA: the definitions, then one batch, or a queue's step when the first
 * argument says 'gate' (lua/queue.lua; a batch's first argument is a number).
 */
export const APPLY_LUA = `${APPLY_SOURCE}\nif ARGV[1] == 'gate' then return gate(KEYS, ARGV) end\nreturn apply(KEYS, ARGV)\n`

/** The functions of the library, named after its version. */
function functionsOf(version: string) {
  return {
    apply: `sluice_apply_${version}`,
    node: `sluice_apply_node_${version}`,
    gate: `sluice_gate_${version}`,
  }
}

/**
 * The library for FUNCTION LOAD, its names carrying `version`. While a library loads, Redis offers
 * little more than redis.register_function (not even `math`), so the definitions are made on the
 * first call and kept for every later one.
 */
function libraryOf(version: string): string {
  const fn = functionsOf(version)
  return [
    `#!lua name=sluice_${version}`,
    'local function define()',
    APPLY_SOURCE,
    'return apply, gate',
    'end',
    'local apply, gate',
    `redis.register_function('${fn.apply}', function(keys, args)`,
    '  if not apply then apply, gate = define() end',
    '  return apply(keys, args)',
    'end)',
    'redis.register_function{',
    `  function_name = '${fn.node}',`,
    "  flags = { 'allow-cross-slot-keys' },",
    '  callback = function(_, args)',
    '    if not apply then apply, gate = define() end',
    '    return apply(args, args, true, 1, tonumber(args[1]) + 1)',
    '  end,',
    '}',
    `redis.register_function('${fn.gate}', function(keys, args)`,
    '  if not apply then apply, gate = define() end',
    '  return gate(keys, args)',
    'end)',
    '',
  ].join('\n')
}

/**
 * The library's version: a digest of its whole text with the version left out — the Lua and the
 * wrapper that registers it — so that any change names a new library and versions never mix (a
 * server that already holds a library of that name keeps it as it is).
 */
export const LIBRARY_VERSION = createHash('sha1').update(libraryOf('')).digest('hex').slice(0, 12)

const FUNCTIONS = functionsOf(LIBRARY_VERSION)

/** The function FCALL calls. */
export const APPLY_FUNCTION = FUNCTIONS.apply

/**
 * The batch function for a Redis Cluster node's ops over several hash slots: its one declared key
 * routes the call to the node, its arguments are the batch's key count, its keys, then the batch's
 * arguments. The flag lets it touch keys of every slot the node serves (Redis still refuses a key
 * the node does not serve, which fails the call before it writes anything: see apply.lua).
 */
export const NODE_FUNCTION = FUNCTIONS.node

/** The function of a queue's steps (lua/queue.lua), in the same library. */
export const GATE_FUNCTION = FUNCTIONS.gate

/** The library for FUNCTION LOAD. */
export const APPLY_LIBRARY = libraryOf(LIBRARY_VERSION)
