// Installing Debian packages for the tests, as root or through `sudo -n`.
import { asRoot, firstLine, type Outcome, type Privilege, run } from './system.js'

/** What a person would type (without sudo): also what the install line shows. */
export function installCommand(packages: readonly string[]): string[] {
  return ['apt-get', 'install', '-y', ...packages]
}

/** The last line of output that says something: apt-get puts the reason for a failure last. */
export function lastLine(outcome: Outcome): string {
  const lines = `${outcome.stdout}\n${outcome.stderr}`.split('\n').map((l) => l.trim())
  return lines.filter((l) => l.length > 0).at(-1) ?? firstLine(outcome)
}

export async function aptInstall(
  packages: readonly string[],
  how: Privilege,
  env: NodeJS.ProcessEnv,
  log: (line: string) => void,
): Promise<Outcome> {
  // `env` carries DEBIAN_FRONTEND through sudo; waiting for the dpkg lock covers another install
  // running at the same time.
  const apt = (...args: string[]) =>
    run(
      asRoot(
        ['env', 'DEBIAN_FRONTEND=noninteractive', 'apt-get', '-q', '-o', 'DPkg::Lock::Timeout=600', ...args],
        how,
      ),
      {
        env,
        timeoutMs: 30 * 60_000,
      },
    )
  const first = await apt('install', '-y', ...packages)
  if (first.code === 0) return first
  // Package lists missing or stale (a fresh machine or image): refresh them once and retry.
  log(`apt-get install failed (${lastLine(first)}); running apt-get update and trying once more`)
  const update = await apt('update')
  if (update.code !== 0) return update
  return apt('install', '-y', ...packages)
}
