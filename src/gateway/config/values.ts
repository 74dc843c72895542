/** Parsers for the human-friendly values a config file holds: durations ("30s") and sizes ("10mb"). */

const DURATION_UNITS: Record<string, number> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
}

const SIZE_UNITS: Record<string, number> = {
  b: 1,
  kb: 1024,
  mb: 1024 ** 2,
  gb: 1024 ** 3,
}

/** "500ms", "30s", "5m", "1h", "1d" (or a number of milliseconds) → milliseconds; undefined if malformed. */
export function parseDuration(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$/i.exec(value)
  if (!match) return undefined
  return Math.round(Number(match[1]) * DURATION_UNITS[match[2]!.toLowerCase()]!)
}

/** "512kb", "10mb", "1gb" (or a number of bytes) → bytes; undefined if malformed. */
export function parseSize(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined
  const match = /^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb)\s*$/i.exec(value)
  if (!match) return undefined
  return Math.round(Number(match[1]) * SIZE_UNITS[match[2]!.toLowerCase()]!)
}

/** Formats milliseconds for people: 3600000 → "1h", 90000 → "90s". */
export function formatDuration(ms: number): string {
  for (const [unit, size] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1_000],
  ] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`
  }
  return `${ms}ms`
}
