/**
 * Where each kept detection stands now, for operators: still active (its detector's flag stands),
 * cleared by an operator (an audit row after it), or expired. The store keeps the detections and
 * the flags, the audit log the clears; this joins them without knowing any detector by name, so a
 * new kind shows with no change here.
 */
import type { DetectionRecord, DetectorStore } from '../../store/detectors/types.js'

export const DETECTION_STATES = ['active', 'cleared', 'expired'] as const
export type DetectionState = (typeof DETECTION_STATES)[number]

const LEVELS = ['none', 'alert', 'throttle', 'block']

/** An operator's clear as the audit log holds it. */
export interface ClearRow {
  subject: string
  /** The detector cleared; null: all of the subject's. */
  detector: string | null
  at: number
  by: string
}

export interface DetectionView extends DetectionRecord {
  state: DetectionState
  /** While active: when the flag ends (ISO 8601); null: when an operator clears it. */
  until: string | null
  cleared: { at: string; by: string } | null
  /** The subject's allow-listing now: false, true (for good) or until when (ISO 8601). */
  allowListed: boolean | string
}

const levelRank = (level: unknown) => {
  const i = typeof level === 'number' ? level : LEVELS.indexOf(String(level))
  return i < 0 ? LEVELS.length : i
}
const timeOf = (record: DetectionRecord) => Date.parse(record.at)

/** The detections' state, newest first as given. `clears` are the operators' clears since the oldest. */
export async function withState(
  records: DetectionRecord[],
  store: DetectorStore,
  clears: ClearRow[],
): Promise<DetectionView[]> {
  const subjects = [...new Set(records.map((r) => r.subject))]
  const views = new Map(await Promise.all(subjects.map(async (s) => [s, await store.inspect(s)] as const)))
  // The newest detection seen so far (walking newest first) per subject and detector.
  const newer = new Map<string, DetectionRecord>()
  return records.map((r) => {
    const at = timeOf(r)
    const id = `${r.subject}\0${r.detector}`
    const later = newer.get(id)
    newer.set(id, r)
    const view = views.get(r.subject)
    const allowListed =
      view === undefined || view.allow === 0 ? false : view.allow === -1 ? true : iso(view.allow)
    const clear = clears
      .filter(
        (c) => c.subject === r.subject && (c.detector === null || c.detector === r.detector) && c.at >= at,
      )
      .reduce<ClearRow | undefined>(
        (first, c) => (first === undefined || c.at < first.at ? c : first),
        undefined,
      )
    if (clear !== undefined) {
      return {
        ...r,
        state: 'cleared',
        until: null,
        cleared: { at: iso(clear.at), by: clear.by },
        allowListed,
      }
    }
    const flag = view?.flags[r.detector as keyof typeof view.flags]
    // A level is reported only when it rises: a later detection of the same detector at this level
    // or lower means the flag fell in between, so this one is over even if a flag stands now.
    const superseded = later !== undefined && levelRank(later.level) <= levelRank(r.level)
    const active = flag !== undefined && flag.lv > 0 && !superseded
    return {
      ...r,
      state: active ? 'active' : 'expired',
      until: active && flag.until > 0 ? iso(flag.until) : null,
      cleared: null,
      allowListed,
    }
  })
}

const iso = (ms: number) => new Date(ms).toISOString()
