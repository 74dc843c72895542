import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { DETECTOR_LIBRARY } from '../src/store/detectors/script.js'
import { APPLY_LIBRARY } from '../src/store/redis/script.js'

// A server that already holds a library of a given name keeps it as it is (FUNCTION LOAD without
// REPLACE), so a library whose text changed must change its name: its version is the digest of
// its whole text — the Lua and the wrapper that registers its functions — with the version left out.
const libraries = { 'the limiter': APPLY_LIBRARY, 'the detectors': DETECTOR_LIBRARY }

describe('Redis Function library versions', () => {
  for (const [name, library] of Object.entries(libraries)) {
    it(`${name}'s library is named after all of its text, wrapper included`, () => {
      const version = /^#!lua name=\S+_([0-9a-f]{12})\n/.exec(library)?.[1]
      expect(version).toBeDefined()
      const blanked = library.replaceAll(version!, '')
      expect(createHash('sha1').update(blanked).digest('hex').slice(0, 12)).toBe(version)
      // Every function it registers carries the version too.
      const registered = [...library.matchAll(/(?:register_function\('|function_name = ')([^']+)'/g)].map(
        (m) => m[1],
      )
      expect(registered.length).toBeGreaterThan(0)
      for (const fn of registered) expect(fn!.endsWith(`_${version}`)).toBe(true)
    })
  }
})
