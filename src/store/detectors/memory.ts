/**
 * Detector state in this process: one SubjectState per subject (engine.ts steps), expiring after
 * `ttlMs` idle, at most `maxSubjects` kept (the least recently seen go first).
 */
import {
  type CheckOutcome,
  type CheckStep,
  checkSubject,
  type DetectorName,
  emptyHistory,
  emptyState,
  emptyStuffing,
  LoopEntries,
  observeFailure,
  type Raised,
  type RecordStep,
  recordSubject,
  type StuffingState,
  type StuffingStep,
  type SubjectState,
} from '../../core/detectors/index.js'
import { requirePositiveInteger } from '../../core/errors.js'
import {
  DEFAULT_MAX_LOG,
  DEFAULT_TTL_MS,
  type DetectionRecord,
  type DetectorStore,
  type SubjectView,
} from './types.js'

export interface MemoryDetectorStoreOptions {
  ttlMs?: number
  maxSubjects?: number
  maxLog?: number
  /** The clock (default Date.now). */
  now?: () => number
}

interface Held {
  state: SubjectState
  expires: number
}

export class MemoryDetectorStore implements DetectorStore {
  private readonly subjects = new Map<string, Held>()
  private readonly allowed = new Map<string, number>()
  private stuffing: StuffingState = emptyStuffing()
  private readonly logged: DetectionRecord[] = []
  private readonly ttlMs: number
  private readonly maxSubjects: number
  private readonly maxLog: number
  private readonly clock: () => number

  constructor(o: MemoryDetectorStoreOptions = {}) {
    this.ttlMs = o.ttlMs === undefined ? DEFAULT_TTL_MS : requirePositiveInteger(o.ttlMs, 'ttlMs')
    this.maxSubjects =
      o.maxSubjects === undefined ? 100_000 : requirePositiveInteger(o.maxSubjects, 'maxSubjects')
    this.maxLog = o.maxLog === undefined ? DEFAULT_MAX_LOG : requirePositiveInteger(o.maxLog, 'maxLog')
    this.clock = o.now ?? Date.now
  }

  /** Subjects held now (for tests of the bound). */
  get size(): number {
    return this.subjects.size
  }

  now(): number {
    return this.clock()
  }

  /** The subject seen last: the newest in `subjects`' order already, not moved again. */
  private newest: string | undefined

  private state(subject: string, now: number): SubjectState {
    let held = this.subjects.get(subject)
    // The least recently seen go first: a subject seen again moves to the end of the map's order
    // (deleted and set again), unless it is there already (most calls come from few subjects).
    const last = held !== undefined && subject === this.newest
    if (held !== undefined) {
      if (!last) this.subjects.delete(subject)
      if (held.expires <= now) held = undefined
    }
    if (held === undefined) {
      held = { state: emptyState(), expires: 0 }
      if (!last && this.subjects.size >= this.maxSubjects) {
        const oldest = this.subjects.keys().next().value
        if (oldest !== undefined) this.subjects.delete(oldest)
      }
      this.subjects.set(subject, held)
    } else if (!last) this.subjects.set(subject, held)
    this.newest = subject
    held.expires = now + this.ttlMs
    held.state.allow = this.allowedUntil(subject, now)
    return held.state
  }

  private allowedUntil(subject: string, now: number): number {
    const until = this.allowed.get(subject)
    if (until === undefined) return 0
    if (until !== -1 && until <= now) {
      this.allowed.delete(subject)
      return 0
    }
    return until
  }

  check(subject: string, step: CheckStep): CheckOutcome {
    const now = this.clock()
    return checkSubject(this.state(subject, now), step, now)
  }

  record(subject: string, step: RecordStep): Raised[] {
    const now = this.clock()
    return recordSubject(this.state(subject, now), step, now)
  }

  async failure(step: StuffingStep): Promise<Raised[]> {
    return observeFailure(this.stuffing, step, this.clock())
  }

  async clear(subject: string, detector?: DetectorName): Promise<void> {
    const held = this.subjects.get(subject)
    if (detector === 'stuffing') {
      this.stuffing = emptyStuffing()
      return
    }
    if (held === undefined) return
    const s = held.state
    for (const name of detector === undefined
      ? (['loop', 'spend', 'sharedKey', 'scraping'] as const)
      : [detector]) {
      delete s.flags[name]
      if (name === 'loop') {
        s.loop = new LoopEntries()
        s.rm = -1
        s.rn = 0
      } else if (name === 'sharedKey') {
        s.addrs.clear()
        s.countries.clear()
        s.hist = emptyHistory()
      } else if (name === 'spend') s.spend.h = 0
      else if (name === 'scraping') s.scrape = { m: -1, hi: 0, c: 0 }
    }
  }

  async allow(subject: string, forMs?: number): Promise<void> {
    if (forMs === 0) this.allowed.delete(subject)
    else this.allowed.set(subject, forMs === undefined ? -1 : this.clock() + forMs)
  }

  async seed(subject: string, perBucket: number): Promise<void> {
    this.state(subject, this.clock()).spend.b = perBucket
  }

  async inspect(subject: string): Promise<SubjectView> {
    const now = this.clock()
    const held = this.subjects.get(subject)
    const s = held !== undefined && held.expires > now ? held.state : emptyState()
    const flags: SubjectView['flags'] = {}
    for (const [name, f] of Object.entries(s.flags)) {
      if (f.lv > 0 && (f.until === 0 || f.until > now)) flags[name as DetectorName] = { ...f }
    }
    return {
      subject,
      flags,
      baseline: s.spend.b,
      addresses: [...s.addrs.keys()],
      countries: [...s.countries.keys()],
      usualAddresses: s.hist.b,
      allow: this.allowedUntil(subject, now),
    }
  }

  async log(record: DetectionRecord): Promise<void> {
    this.logged.unshift(record)
    if (this.logged.length > this.maxLog) this.logged.length = this.maxLog
  }

  async recent(limit: number): Promise<DetectionRecord[]> {
    return this.logged.slice(0, limit)
  }

  async close(): Promise<void> {}
}
