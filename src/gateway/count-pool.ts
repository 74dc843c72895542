import { availableParallelism } from 'node:os'
import { Worker } from 'node:worker_threads'
import type { EncodingName } from './config/schema.js'
import type { CountAnswer, CountJob } from './count-worker.js'

export interface CountPoolOptions {
  /** Worker threads (default: one per core beyond the first, at most 2, at least 1). */
  workers?: number
  /** Characters a worker may have waiting (queued or being counted) before jobs are turned away. */
  maxQueuedChars?: number
  /** A worker with nothing to do for this long is stopped (its vocabularies take tens of MB). */
  idleMs?: number
}

interface Pending {
  chars: number
  /** Undefined once the caller stopped waiting (its deadline passed). */
  resolve: ((tokens: number | undefined) => void) | undefined
  timer: NodeJS.Timeout | undefined
}

interface Slot {
  worker: Worker
  queuedChars: number
  jobs: Map<number, Pending>
  idleTimer: NodeJS.Timeout | undefined
}

/**
 * Starts the counting worker: the compiled .js beside this module, or, when running from the
 * TypeScript sources (tests, benchmarks), the .ts file through tsx's loader.
 */
function spawnWorker(): Worker {
  const url = new URL(
    import.meta.url.endsWith('.ts') ? './count-worker.ts' : './count-worker.js',
    import.meta.url,
  )
  if (!url.pathname.endsWith('.ts')) return new Worker(url)
  const bootstrap = `import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(url.href)}) })`
  return new Worker(bootstrap, { eval: true })
}

/**
 * Worker threads that count tokens off the event loop. Each job waits at most its deadline: past
 * it, or when the workers already hold `maxQueuedChars` of text, the caller gets `undefined` and
 * uses a bound instead. A worker keeps counting a job whose caller gave up (it cannot be
 * interrupted), and that text still counts against `maxQueuedChars`, so the work waiting is bounded.
 */
export class CountPool {
  readonly size: number
  readonly maxQueuedChars: number
  private readonly idleMs: number
  private readonly slots: Array<Slot | undefined>
  private nextId = 1

  constructor(options: CountPoolOptions = {}) {
    this.size = options.workers ?? Math.max(1, Math.min(2, availableParallelism() - 1))
    this.maxQueuedChars = options.maxQueuedChars ?? 2_000_000
    this.idleMs = options.idleMs ?? 30_000
    this.slots = new Array(this.size).fill(undefined)
  }

  /** Characters of text the workers hold right now. */
  get queuedChars(): number {
    let total = 0
    for (const slot of this.slots) total += slot?.queuedChars ?? 0
    return total
  }

  /** Counts texts in a worker; undefined when that cannot be done within `deadlineMs`. */
  count(
    encoding: EncodingName,
    texts: string[],
    chars: number,
    deadlineMs: number,
  ): Promise<number | undefined> {
    const index = this.leastBusy()
    const slot = this.slots[index] ?? this.start(index)
    if (slot.queuedChars + chars > this.maxQueuedChars) return Promise.resolve(undefined)
    const id = this.nextId++
    return new Promise((resolve) => {
      const pending: Pending = { chars, resolve, timer: undefined }
      pending.timer = setTimeout(() => {
        pending.resolve = undefined
        resolve(undefined)
      }, deadlineMs)
      pending.timer.unref()
      slot.jobs.set(id, pending)
      slot.queuedChars += chars
      if (slot.idleTimer !== undefined) clearTimeout(slot.idleTimer)
      slot.idleTimer = undefined
      slot.worker.ref()
      slot.worker.postMessage({ id, encoding, texts } satisfies CountJob)
    })
  }

  /** Stops every worker; jobs still waiting get `undefined`. */
  async close(): Promise<void> {
    await Promise.all(this.slots.map((slot, i) => (slot ? this.stop(i, slot) : undefined)))
  }

  private leastBusy(): number {
    let best = 0
    for (let i = 1; i < this.slots.length; i++) {
      if ((this.slots[i]?.queuedChars ?? 0) < (this.slots[best]?.queuedChars ?? 0)) best = i
    }
    return best
  }

  private start(index: number): Slot {
    const slot: Slot = { worker: spawnWorker(), queuedChars: 0, jobs: new Map(), idleTimer: undefined }
    this.slots[index] = slot
    slot.worker.on('message', (answer: CountAnswer) => this.answered(slot, answer))
    const fail = () => {
      if (this.slots[index] === slot) this.slots[index] = undefined
      this.settleAll(slot)
    }
    slot.worker.on('error', fail)
    slot.worker.on('exit', fail)
    slot.worker.unref()
    return slot
  }

  private answered(slot: Slot, answer: CountAnswer): void {
    const pending = slot.jobs.get(answer.id)
    if (pending === undefined) return
    slot.jobs.delete(answer.id)
    slot.queuedChars -= pending.chars
    clearTimeout(pending.timer)
    pending.resolve?.('tokens' in answer ? answer.tokens : undefined)
    if (slot.jobs.size === 0) {
      // Idle: the worker no longer keeps the process alive, and stops after idleMs.
      slot.worker.unref()
      slot.idleTimer = setTimeout(() => {
        const index = this.slots.indexOf(slot)
        if (index !== -1 && slot.jobs.size === 0) void this.stop(index, slot)
      }, this.idleMs)
      slot.idleTimer.unref()
    }
  }

  private settleAll(slot: Slot): void {
    for (const pending of slot.jobs.values()) {
      clearTimeout(pending.timer)
      pending.resolve?.(undefined)
    }
    slot.jobs.clear()
    slot.queuedChars = 0
    if (slot.idleTimer !== undefined) clearTimeout(slot.idleTimer)
  }

  private async stop(index: number, slot: Slot): Promise<void> {
    if (this.slots[index] === slot) this.slots[index] = undefined
    this.settleAll(slot)
    await slot.worker.terminate()
  }
}
