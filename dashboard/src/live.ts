/** Data that stays current without a reload: fetched at once, then again every few seconds. */
import { useCallback, useEffect, useRef, useState } from 'preact/hooks'

/** How often pages read the API again (ms). */
export const REFRESH_MS = 5000

export interface Polled<T> {
  data: T | undefined
  error: Error | undefined
  /** Reads again now (after a change made on this page). */
  refresh(): void
}

/**
 * Calls `load` now, whenever `deps` change, and every `intervalMs` while the tab is visible. An
 * answer that arrives after newer deps is dropped; the last good data stays while a read fails.
 */
export function usePoll<T>(
  load: (signal: AbortSignal) => Promise<T>,
  deps: unknown[],
  intervalMs = REFRESH_MS,
): Polled<T> {
  const [data, setData] = useState<T | undefined>(undefined)
  const [error, setError] = useState<Error | undefined>(undefined)
  const [tick, setTick] = useState(0)
  const loadRef = useRef(load)
  loadRef.current = load
  useEffect(() => {
    setData(undefined)
    setError(undefined)
  }, deps)
  useEffect(() => {
    const controller = new AbortController()
    let timer: number | undefined
    let stopped = false
    const run = async () => {
      if (document.visibilityState === 'visible') {
        try {
          const value = await loadRef.current(controller.signal)
          if (stopped) return
          setData(value)
          setError(undefined)
        } catch (e) {
          if (stopped || (e as Error).name === 'AbortError') return
          setError(e as Error)
        }
      }
      if (!stopped) timer = window.setTimeout(run, intervalMs)
    }
    void run()
    return () => {
      stopped = true
      controller.abort()
      window.clearTimeout(timer)
    }
  }, [...deps, tick, intervalMs])
  const refresh = useCallback(() => setTick((t) => t + 1), [])
  return { data, error, refresh }
}
