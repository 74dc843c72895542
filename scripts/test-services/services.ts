// The services the tests need: ONE table. Each row says which tests need the service (by path, or
// by the test helper that uses it), which Debian packages bring it, and how to tell it is ready.
// The bootstrap checks only the rows the selected tests need; `npm run test:unit` runs the tests
// that need none.

import { probeChromium } from './chromium.js'
import { allTestFiles, type NeededBy, servicesNeeded } from './needs.js'
import { probePostgres, trustLocalConnections } from './postgres.js'
import type { Probe } from './probe.js'
import { probeRedis } from './redis.js'
import type { Privilege } from './system.js'

export interface Service {
  name: string
  neededBy: NeededBy
  /** Debian packages that bring it (`apt-get install -y …`). */
  packages: readonly string[]
  probe(env: NodeJS.ProcessEnv): Promise<Probe>
  /** Setup after this run installed the packages; returns a problem, or undefined. */
  afterInstall?(
    env: NodeJS.ProcessEnv,
    how: Privilege,
    log: (line: string) => void,
  ): Promise<string | undefined>
}

export const SERVICES: readonly Service[] = [
  {
    name: 'redis',
    neededBy: {
      helpers: ['test/helpers/redis-server.ts', 'test/helpers/redis-cluster.ts'],
      paths: ['test/bootstrap-redis.test.ts', 'test/redis-server-cleanup.test.ts'],
    },
    packages: ['redis-server'],
    probe: probeRedis,
  },
  {
    name: 'postgres',
    neededBy: { paths: ['test/control/', 'test/bootstrap-postgres.test.ts'] },
    packages: ['postgresql'],
    probe: probePostgres,
    afterInstall: trustLocalConnections,
  },
  {
    name: 'chromium',
    neededBy: { paths: ['test/dashboard/', 'test/bootstrap-chromium.test.ts'] },
    packages: ['chromium'],
    probe: probeChromium,
  },
]

/** Repository-relative paths of the test files that need no service (`npm run test:unit`). */
export function nodeOnlyTestFiles(root: string): string[] {
  const needs = servicesNeeded(root, allTestFiles(root), SERVICES)
  return [...needs].filter(([, names]) => names.length === 0).map(([file]) => file)
}
