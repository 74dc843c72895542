import { afterAll, beforeAll } from 'vitest'
import type { ControlHarness } from '../harness.js'
import { keysContract } from './keys.js'

/** The one behaviour suite the control plane passes, unchanged, on every database. */
export function controlContract(harness: ControlHarness): void {
  beforeAll(() => harness.setup())
  afterAll(() => harness.teardown())
  keysContract(harness)
}
