import { controlContract } from './contract/index.js'
import { sqliteHarness } from './harness.js'

// A temporary file, deleted at the end.
controlContract(sqliteHarness())
