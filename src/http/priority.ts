import { PRIORITIES, type Priority } from '../waiting.js'

/**
 * The per-request priority header (docs/queueing.md): `x-sluice-priority: high | normal | low`,
 * read only for tiers whose queue allows it (`queue.priorities`); ignored for every other tier.
 */
export const PRIORITY_HEADER = 'x-sluice-priority'

export type PriorityRead = { priority: Priority | undefined; error?: undefined } | { error: string }

/** The header's priority for a tier that allows one; an error message for a bad value. */
export function readPriority(value: string | readonly string[] | undefined, allowed: boolean): PriorityRead {
  if (!allowed || value === undefined) return { priority: undefined }
  const text = (typeof value === 'string' ? value : value.join(',')).trim().toLowerCase()
  if ((PRIORITIES as readonly string[]).includes(text)) return { priority: text as Priority }
  return {
    error: `The ${PRIORITY_HEADER} header must be "high", "normal" or "low", got ${JSON.stringify(String(value)).slice(0, 80)}.`,
  }
}
