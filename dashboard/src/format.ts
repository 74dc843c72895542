/** Numbers, money, durations and times for people: 1.2k, $3.40, 4m 20s, 2m ago. */

const SUFFIXES: [number, string][] = [
  [1e12, 'T'],
  [1e9, 'B'],
  [1e6, 'M'],
  [1e3, 'k'],
]

/** 950, 1.2k, 12k, 3.4M: at most three significant digits past a thousand. */
export function count(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '—'
  const sign = n < 0 ? '-' : ''
  const abs = Math.abs(n)
  if (abs < 1000) return sign + (Number.isInteger(abs) ? String(abs) : abs.toFixed(abs < 10 ? 1 : 0))
  for (const [size, suffix] of SUFFIXES) {
    if (abs >= size * 0.9995) {
      const v = abs / size
      const text = v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(0) : v.toFixed(1)
      return `${sign}${text.replace(/\.0$/, '')}${suffix}`
    }
  }
  return sign + String(abs)
}

/** $3.40, $1,234.50, $0.0034 (two significant digits below a cent), $0. */
export function usd(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '—'
  if (n === 0) return '$0'
  const sign = n < 0 ? '-' : ''
  const abs = Math.abs(n)
  if (abs < 0.000001) return `${sign}<$0.000001`
  if (abs < 0.01) {
    const v = Number(abs.toPrecision(2))
    const digits = Math.min(8, Math.max(2, 1 - Math.floor(Math.log10(v))))
    return `${sign}$${v.toFixed(digits).replace(/(\.\d\d\d*?)0+$/, '$1')}`
  }
  if (abs >= 1_000_000) return `${sign}$${count(abs)}`
  return `${sign}$${abs.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`
}

/** 82%, 0.4%, 100% */
export function percent(share: number | null | undefined): string {
  if (share === null || share === undefined || !Number.isFinite(share)) return '—'
  const p = share * 100
  if (p > 0 && p < 1) return `${p.toFixed(1)}%`
  return `${Math.round(p)}%`
}

/** 350 ms, 12s, 4m 20s, 1h 5m, 2d 3h: the two largest units. */
export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return '—'
  if (!Number.isFinite(ms)) return 'never'
  const whole = Math.max(0, Math.round(ms))
  if (whole < 1000) return `${whole} ms`
  const units: [string, number][] = [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ]
  const parts: string[] = []
  let rest = whole
  for (const [unit, size] of units) {
    const n = Math.floor(rest / size)
    rest -= n * size
    if (n > 0) parts.push(`${n}${unit}`)
    else if (parts.length > 0) break
    if (parts.length === 2) break
  }
  return parts.join(' ')
}

/** Milliseconds with a sensible precision: 0.42 ms, 3.1 ms, 12 ms. */
export function millis(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '—'
  if (ms < 1) return `${ms.toFixed(2)} ms`
  if (ms < 10) return `${ms.toFixed(1)} ms`
  return duration(ms)
}

/** just now, 42s ago, 4m ago, 3h ago, 2d ago — or in 5m for the future. */
export function ago(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return '—'
  const t = Date.parse(iso)
  if (!Number.isFinite(t)) return '—'
  const diff = now - t
  if (Math.abs(diff) < 5000) return 'just now'
  const text = duration(Math.abs(diff)).split(' ')[0]!
  return diff > 0 ? `${text} ago` : `in ${text}`
}

/** 14:05:03 today, or 27 Nov 14:05 on another day (the browser's time zone). */
export function clock(iso: string | number | null | undefined, now = Date.now()): string {
  if (iso === null || iso === undefined) return '—'
  const d = new Date(iso)
  if (!Number.isFinite(d.getTime())) return '—'
  const sameDay = new Date(now).toDateString() === d.toDateString()
  return sameDay
    ? d.toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit', second: '2-digit' })
    : d.toLocaleString('en-GB', { day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit' })
}

/** A full date and time for a title attribute or a detail list. */
export function fullTime(iso: string | null | undefined): string {
  if (!iso) return '—'
  const d = new Date(iso)
  return Number.isFinite(d.getTime())
    ? d.toLocaleString('en-GB', { dateStyle: 'medium', timeStyle: 'medium' })
    : '—'
}

/** An amount in a limit's unit: requests and tokens as counts, usd as money. */
export function amount(value: number, unit: string): string {
  return unit === 'usd' ? usd(value) : count(value)
}
