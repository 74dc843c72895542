import { controlContract } from './contract/index.js'
import { postgresHarness } from './harness.js'

// A database of this run's own on the PostgreSQL server (SLUICE_TEST_PG_URL), dropped at the end.
controlContract(postgresHarness())
