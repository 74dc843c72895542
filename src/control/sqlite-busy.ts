/**
 * SQLite answers some lock conflicts with SQLITE_BUSY at once instead of waiting out the busy
 * timeout — so that two connections cannot deadlock. Switching a new database to WAL while other
 * processes open it too is one: three processes opening one fresh file failed this way in about
 * one open in forty. Such a step is simply tried again, until its deadline.
 */

/** A pause that blocks the thread: for steps run while a database is being opened, once. */
function pauseSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)
}

function isBusy(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code
  return typeof code === 'string' && code.startsWith('SQLITE_BUSY')
}

/**
 * Runs `step`, again after a short pause while it fails with SQLITE_BUSY, for at most
 * `timeoutMs`; then the last error is thrown. Any other error is thrown at once.
 */
export function retryWhileBusy<T>(
  step: () => T,
  timeoutMs: number,
  clock: () => number = Date.now,
  pause: (ms: number) => void = pauseSync,
): T {
  const deadline = clock() + timeoutMs
  for (let wait = 5; ; wait = Math.min(wait * 2, 100)) {
    try {
      return step()
    } catch (error) {
      if (!isBusy(error) || clock() >= deadline) throw error
      pause(Math.min(wait, Math.max(1, deadline - clock())))
    }
  }
}
