/**
 * Where the abuse detectors keep their state: in process (memory.ts) or in Redis (redis.ts, the
 * steps in lua/ run atomically with Redis TIME, so every instance sharing the Redis sees one
 * state and each level is raised — and reported — once). Both run the steps of
 * src/core/detectors/engine.ts; keys expire, and each subject's state is bounded.
 */
import type {
  CheckOutcome,
  CheckStep,
  DetectorName,
  Flag,
  Raised,
  RecordStep,
  StuffingStep,
} from '../../core/detectors/index.js'

/** What an operator sees of one subject. */
export interface SubjectView {
  subject: string
  flags: Partial<Record<DetectorName, Flag>>
  /** Spend baseline per bucket. */
  baseline: number
  /** Addresses seen in the shared-key window. */
  addresses: string[]
  /** Countries (ISO codes) seen in the shared-key window, when they are counted. */
  countries: string[]
  /** The key's learned usual number of addresses per window (0 before any history). */
  usualAddresses: number
  /** Allow-listed until (0: not; -1: for good). */
  allow: number
}

/** A detection as logged for operators (the event's JSON). */
export type DetectionRecord = Record<string, unknown> & { subject: string; detector: string; at: string }

export interface DetectorStore {
  /** Before admission: observe the request, raise flags, and say whether a standing flag refuses it. */
  check(subject: string, step: CheckStep): CheckOutcome | Promise<CheckOutcome>
  /** After admission: record what it cost and how close to its limit it was. */
  record(subject: string, step: RecordStep): Raised[] | Promise<Raised[]>
  /** A failed key from `step.address` (gateway-wide, and per key prefix). */
  failure(step: StuffingStep): Promise<Raised[]>
  /** Lowers a subject's flags (one detector's, or all) and forgets what that detector counted. */
  clear(subject: string, detector?: DetectorName): Promise<void>
  /** Allow-lists a subject for `forMs` (undefined: for good; 0: lifts the allow-listing). */
  allow(subject: string, forMs?: number): Promise<void>
  /** Sets a subject's spend baseline (per bucket), e.g. from what its history shows. */
  seed(subject: string, perBucket: number): Promise<void>
  inspect(subject: string): Promise<SubjectView>
  /** Keeps a detection for operators (the newest `maxLog`). */
  log(record: DetectionRecord): Promise<void>
  /** The newest detections first. */
  recent(limit: number): Promise<DetectionRecord[]>
  /** The store's clock. */
  now(): number | Promise<number>
  close(): Promise<void>
}

/** Detector state of an idle subject expires after this (default 7 days): the spend baseline spans days. */
export const DEFAULT_TTL_MS = 7 * 86_400_000
/** Detections kept for operators. */
export const DEFAULT_MAX_LOG = 1000
