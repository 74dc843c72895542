import { afterAll, beforeAll } from 'vitest'
import type { ControlHarness } from '../harness.js'
import { changesMigrationsContract } from './changes-migrations.js'
import { keysContract } from './keys.js'
import { ledgerContract } from './ledger.js'
import { teamsUsersAuditContract } from './teams-users-audit.js'
import { usageContract } from './usage.js'

/** The one behaviour suite the control plane passes, unchanged, on every database. */
export function controlContract(harness: ControlHarness): void {
  beforeAll(() => harness.setup())
  afterAll(() => harness.teardown())
  keysContract(harness)
  teamsUsersAuditContract(harness)
  ledgerContract(harness)
  usageContract(harness)
  changesMigrationsContract(harness)
}
