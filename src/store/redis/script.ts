import { readFileSync } from 'node:fs'

/** The batch script, read once from the .lua file beside this module (in src/ and in dist/). */
export const APPLY_LUA = readFileSync(new URL('./apply.lua', import.meta.url), 'utf8')
