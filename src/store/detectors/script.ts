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
  'check.lua',
  'record.lua',
  'failure.lua',
  'batch.lua',
])

/** Names the library and its functions after the scripts' text, so that versions never mix. */
const VERSION = createHash('sha1').update(STEPS_SOURCE).digest('hex').slice(0, 12)

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

export const STEPS = new DetectorScript(
  `${STEPS_SOURCE}\nreturn steps(KEYS, ARGV)\n`,
  `sluice_det_steps_${VERSION}`,
)

/**
 * The library for FUNCTION LOAD. While a library loads Redis offers little more than
 * redis.register_function, so each script's definitions are made on its first call and kept.
 */
export const DETECTOR_LIBRARY = [
  `#!lua name=sluice_det_${VERSION}`,
  'local function define_steps()',
  STEPS_SOURCE,
  'return steps',
  'end',
  'local steps',
  `redis.register_function('${STEPS.fn}', function(keys, args)`,
  '  if not steps then steps = define_steps() end',
  '  return steps(keys, args)',
  'end)',
  '',
].join('\n')
