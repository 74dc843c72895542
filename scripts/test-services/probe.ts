// What a service's probe finds, and what the bootstrap can do about it.

export type Probe =
  /** Usable as it is; `env` is what the tests are told about it. */
  | { state: 'ready'; summary: string; env?: Record<string, string> }
  /** Not installed: its Debian packages would bring it. */
  | { state: 'missing'; problem: string }
  /** Installed but not running: `start` brings it up (run as root, or as `ownerUid`). */
  | { state: 'stopped'; problem: string; start: string[]; ownerUid?: number }
  /** Present but not usable as configured: a person has to act (`fix` says how). */
  | { state: 'unusable'; problem: string; fix: string }

export function unusable(problem: string, fix: string): Probe {
  return { state: 'unusable', problem, fix }
}
