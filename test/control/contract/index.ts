import { afterAll, beforeAll } from 'vitest'
import type { ControlHarness } from '../harness.js'
import { changesMigrationsContract } from './changes-migrations.js'
import { keysContract } from './keys.js'
import { ledgerUsageContract } from './ledger-usage.js'
import { teamsUsersAuditContract } from './teams-users-audit.js'

/** The one behaviour suite the control plane passes, unchanged, on every database. */
export function controlContract(harness: ControlHarness): void {
  beforeAll(() => harness.setup())
  afterAll(() => harness.teardown())
  keysContract(harness)
  teamsUsersAuditContract(harness)
  ledgerUsageContract(harness)
  changesMigrationsContract(harness)
}
