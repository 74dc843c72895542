/** Progress lines on stderr, so that stdout carries only the final tables. */
const started = performance.now()

export function progress(message: string): void {
  const s = ((performance.now() - started) / 1000).toFixed(1).padStart(6)
  process.stderr.write(`[${s}s] ${message}\n`)
}

export function formatRate(opsPerSec: number): string {
  if (!Number.isFinite(opsPerSec)) return '—'
  if (opsPerSec >= 1e6) return `${(opsPerSec / 1e6).toFixed(2)}M`
  if (opsPerSec >= 1e4) return `${(opsPerSec / 1e3).toFixed(1)}k`
  return opsPerSec.toFixed(0)
}
