import type { IncomingMessage } from 'node:http'

export interface UploadLimits {
  /** Longest time to receive a whole body, in ms. */
  timeoutMs: number
  /** Longest silence while a body arrives, in ms; also the grace before minRate applies. */
  idleTimeoutMs: number
  /** Slowest average rate accepted, in bytes per second. */
  minRate: number
  /** Bodies one client address may be sending at once. */
  perIp: number
}

interface Upload {
  address: string
  startedAt: number
  /** socket.bytesRead when the headers were in: what came after is body. */
  baseline: number
  received: number
  lastProgressAt: number
}

/** What a body that took too long is refused with (a 408, mapped by json-body.ts: bodyError). */
export class UploadTimeout extends Error {
  override name = 'UploadTimeout'
  readonly statusCode = 408
  readonly code = 'request_timeout'
}

const SWEEP_MS = 1_000

function describeBytes(bytes: number): string {
  return bytes >= 1024 && bytes % 1024 === 0 ? `${bytes / 1024} KB` : `${bytes} bytes`
}

/**
 * Watches request bodies while they arrive: each must keep coming (no silence longer than the
 * idle timeout), at an average rate no slower than minRate once the idle timeout has passed, and
 * be complete within the timeout; and one address may send only `perIp` bodies at once. A body
 * that breaks a rule is refused with 408 and its connection closed.
 *
 * Progress is read from the socket's byte count once a second: nothing runs per chunk.
 */
export class UploadGuard {
  private readonly uploads = new Map<IncomingMessage, Upload>()
  private readonly perAddress = new Map<string, number>()
  private sweeper: NodeJS.Timeout | undefined

  constructor(
    readonly limits: UploadLimits,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Bodies being received right now. */
  get size(): number {
    return this.uploads.size
  }

  /**
   * Starts watching a body about to be read; false (nothing watched) when its address already
   * sends `perIp` bodies.
   */
  admit(req: IncomingMessage, address: string): boolean {
    const sending = this.perAddress.get(address) ?? 0
    if (sending >= this.limits.perIp) return false
    this.perAddress.set(address, sending + 1)
    const now = this.now()
    this.uploads.set(req, {
      address,
      startedAt: now,
      baseline: req.socket.bytesRead,
      received: 0,
      lastProgressAt: now,
    })
    const release = () => this.release(req)
    req.once('end', release)
    req.once('close', release)
    if (this.sweeper === undefined) {
      this.sweeper = setInterval(() => this.sweep(), SWEEP_MS)
      this.sweeper.unref()
    }
    return true
  }

  /** Stops watching a body (it arrived, or its request ended). Safe to call more than once. */
  release(req: IncomingMessage): void {
    const upload = this.uploads.get(req)
    if (upload === undefined) return
    this.uploads.delete(req)
    const sending = (this.perAddress.get(upload.address) ?? 1) - 1
    if (sending > 0) this.perAddress.set(upload.address, sending)
    else this.perAddress.delete(upload.address)
    // The sweeper stops at its next tick when there is nothing left to watch, not here: under
    // load the last body in often ends many times a second, and each stop meant a new timer.
  }

  close(): void {
    this.stopSweeping()
    this.uploads.clear()
    this.perAddress.clear()
  }

  /** Checks every body in progress (once a second). */
  sweep(): void {
    if (this.uploads.size === 0) {
      this.stopSweeping()
      return
    }
    const now = this.now()
    for (const [req, upload] of this.uploads) {
      const received = req.socket ? req.socket.bytesRead - upload.baseline : upload.received
      if (received > upload.received) {
        upload.received = received
        upload.lastProgressAt = now
      }
      const problem = this.problem(upload, now)
      if (problem !== undefined) this.refuse(req, problem)
    }
  }

  private problem(upload: Upload, now: number): string | undefined {
    const { timeoutMs, idleTimeoutMs, minRate } = this.limits
    const elapsed = now - upload.startedAt
    if (elapsed > timeoutMs) {
      return `The request body did not arrive within ${Math.round(timeoutMs / 1000)} s.`
    }
    if (now - upload.lastProgressAt > idleTimeoutMs) {
      return `The request body stopped arriving: nothing came for ${Math.round(idleTimeoutMs / 1000)} s.`
    }
    if (elapsed > idleTimeoutMs && upload.received < (minRate * elapsed) / 1000) {
      return `The request body arrives too slowly: the slowest rate accepted is ${describeBytes(minRate)}/s.`
    }
    return undefined
  }

  /** Fails the body read in progress (Fastify answers 408); without a reader, drops the connection. */
  private refuse(req: IncomingMessage, message: string): void {
    this.release(req)
    if (req.listenerCount('error') > 0) req.emit('error', new UploadTimeout(message))
    else req.destroy()
  }

  private stopSweeping(): void {
    if (this.sweeper !== undefined) clearInterval(this.sweeper)
    this.sweeper = undefined
  }
}
