import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'

/**
 * The detector scripts, assembled once from lua/*.lua. Each runs two ways, as the limiter's script
 * does (src/store/redis/script.ts): as a Redis Function (the library is loaded once per node, so
 * its definitions — closures, tables, parsed parameters — are made once, not on every call), and,
 * where Functions are not available or not allowed, as a script (EVALSHA, EVAL after NOSCRIPT).
 */
const read = (file: string) => readFileSync(new URL(`./lua/${file}`, import.meta.url), 'utf8')
const source = (files: string[]) => files.map(read).join('\n')

/** The check, record and failure steps of one turn (batch.ts): defines `steps(KEYS, ARGV)`. */
const STEPS_SOURCE = source([
  'common.lua',
  'subject.lua',
  'loop-count.lua',
  'loop.lua',
  'check.lua',
  'record.lua',
  'failure.lua',
  'batch.lua',
])

export class DetectorScript {
  readonly sha: string
  constructor(
    /** For EVAL: the definitions, then the call. */
    readonly source: string,
    /** The function FCALL calls. */
    readonly fn: string,
  ) {
    this.sha = createHash('sha1').update(source).digest('hex')
  }
}

const stepsFunctionOf = (version: string) => `sluice_det_steps_${version}`

/**
 * The library for FUNCTION LOAD, its names carrying `version`. While a library loads Redis offers
 * little more than redis.register_function, so each script's definitions are made on its first
 * call and kept.
 */
function libraryOf(version: string): string {
  return [
    `#!lua name=sluice_det_${version}`,
    'local function define_steps()',
    STEPS_SOURCE,
    'return steps',
    'end',
    'local steps',
    `redis.register_function('${stepsFunctionOf(version)}', function(keys, args)`,
    '  if not steps then steps = define_steps() end',
    '  return steps(keys, args)',
    'end)',
    '',
  ].join('\n')
}

/**
 * The library's version: a digest of its whole text with the version left out (the Lua and the
 * wrapper that registers it), so that any change names a new library and versions never mix.
 */
export const DETECTOR_LIBRARY_VERSION = createHash('sha1').update(libraryOf('')).digest('hex').slice(0, 12)

export const STEPS = new DetectorScript(
  `${STEPS_SOURCE}\nreturn steps(KEYS, ARGV)\n`,
  stepsFunctionOf(DETECTOR_LIBRARY_VERSION),
)

/** The library for FUNCTION LOAD. */
export const DETECTOR_LIBRARY = libraryOf(DETECTOR_LIBRARY_VERSION)
