/**
 * This process's waiters of each queue, in the queue's order (finish tag, then ticket id, as the
 * store orders them). Only the first of a line polls the store often; the others ask only to
 * renew their lease, and the next is woken at once when the first leaves. The store's order
 * across instances is unchanged by this: a waiter behind another of this process can never be
 * the queue's head before it.
 */
export class LocalWaiter {
  left = false
  private wakeUp: (() => void) | undefined

  constructor(
    private readonly line: LocalWaiter[],
    private readonly drop: () => void,
    readonly ticket: string,
    readonly finish: number,
  ) {}

  isFirst(): boolean {
    return this.line[0] === this
  }

  /** Resolves after `ms`, when this waiter becomes the first of its line, or when `signal` aborts. */
  sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer)
        signal?.removeEventListener('abort', done)
        this.wakeUp = undefined
        resolve()
      }
      const timer = setTimeout(done, ms)
      this.wakeUp = done
      signal?.addEventListener('abort', done, { once: true })
    })
  }

  /** Leaves the line; the next waiter, if it becomes first, is woken to try at once. */
  leave(): void {
    if (this.left) return
    this.left = true
    const at = this.line.indexOf(this)
    if (at >= 0) this.line.splice(at, 1)
    if (this.line.length === 0) this.drop()
    else if (at === 0) this.line[0]!.wake()
  }

  private wake(): void {
    this.wakeUp?.()
  }
}

const before = (a: LocalWaiter, b: LocalWaiter) =>
  a.finish < b.finish || (a.finish === b.finish && a.ticket < b.ticket)

export class LocalLines {
  private readonly lines = new Map<object, Map<string, LocalWaiter[]>>()

  join(backend: object, key: string, ticket: string, finish: number): LocalWaiter {
    let byKey = this.lines.get(backend)
    if (byKey === undefined) {
      byKey = new Map()
      this.lines.set(backend, byKey)
    }
    let line = byKey.get(key)
    if (line === undefined) {
      line = []
      byKey.set(key, line)
    }
    const owner = byKey
    const own = line
    const waiter = new LocalWaiter(
      line,
      () => {
        if (owner.get(key) === own) owner.delete(key)
        if (owner.size === 0) this.lines.delete(backend)
      },
      ticket,
      finish,
    )
    let at = line.length
    while (at > 0 && before(waiter, line[at - 1]!)) at--
    line.splice(at, 0, waiter)
    return waiter
  }
}
