/** The calls a gateway is serving, so that shutdown can wait for them to end. */
export class InFlightCalls {
  private readonly calls = new Set<Promise<unknown>>()
  private waiters: (() => void)[] = []

  get size(): number {
    return this.calls.size
  }

  /** Counts `call` until it settles (either way); returns it unchanged. */
  track<T>(call: Promise<T>): Promise<T> {
    this.calls.add(call)
    const done = () => {
      this.calls.delete(call)
      if (this.calls.size === 0) {
        const waiters = this.waiters
        this.waiters = []
        for (const w of waiters) w()
      }
    }
    call.then(done, done)
    return call
  }

  /** Resolves once no call is in flight. */
  idle(): Promise<void> {
    if (this.calls.size === 0) return Promise.resolve()
    return new Promise((resolve) => this.waiters.push(resolve))
  }
}
