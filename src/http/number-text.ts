/**
 * Whole numbers as text for header values, without String() on every response: a header's
 * numbers change on most responses (what is left, the wait), and String() of a new number is a
 * call into V8's runtime (~340 instructions) whose text V8's number-string cache also keeps alive
 * into the next scavenge. Numbers below 10,000 are looked up, made once on first use (at most
 * 10,000 short texts a table, the table itself, ~80 KB, made on the first such number); larger
 * ones are their leading digits, remembered while they stay the same, and four digits looked up.
 * The same text as String() for every value.
 */

const SMALL = 10_000

/** "0000" … "9999", made on first use. */
let fourDigits: (string | undefined)[] | undefined

function padded(n: number): string {
  let text = fourDigits?.[n]
  if (text === undefined) {
    text = String(n + SMALL).slice(1)
    fourDigits ??= new Array(SMALL)
    fourDigits[n] = text
  }
  return text
}

/** The texts of whole numbers with a fixed start (`";t="`, or none): one table per use. */
export class WholeTexts {
  private small: (string | undefined)[] | undefined
  private lastHigh = -1
  private lastHighText = ''

  constructor(private readonly prefix = '') {}

  /** `prefix + String(n)`. */
  text(n: number): string {
    if (n >= 0 && n < SMALL && Number.isInteger(n)) {
      const text = this.small?.[n]
      if (text !== undefined) return text
      return this.remember(n)
    }
    if (!(n >= SMALL && n <= Number.MAX_SAFE_INTEGER && Number.isInteger(n))) return this.prefix + String(n)
    const high = Math.floor(n / SMALL)
    if (high !== this.lastHigh) {
      this.lastHighText = this.prefix + String(high)
      this.lastHigh = high
    }
    return this.lastHighText + padded(n - high * SMALL)
  }

  private remember(n: number): string {
    const text = this.prefix + String(n)
    this.small ??= new Array(SMALL)
    this.small[n] = text
    return text
  }
}
