/** Model-name tables: exact names or globs with "*" ("gpt-4o*", "*llama*"), most specific first. */

function globToRegExp(pattern: string): RegExp {
  const escaped = pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')
  return new RegExp(`^${escaped}$`, 'i')
}

/** Names remembered per table (a gateway sees a handful of models; emptied when full). */
const MATCHED_MAX = 1_024

export class PatternTable<T> {
  private readonly exact = new Map<string, T>()
  private readonly globs: Array<{ re: RegExp; specificity: number; value: T }> = []
  /** Each name's answer (null: no entry), so a call does not run the globs' regexps again. */
  private readonly matched = new Map<string, T | null>()

  constructor(entries: Record<string, T>) {
    for (const [pattern, value] of Object.entries(entries)) {
      if (pattern.includes('*')) {
        this.globs.push({ re: globToRegExp(pattern), specificity: pattern.replace(/\*/g, '').length, value })
      } else {
        this.exact.set(pattern.toLowerCase(), value)
      }
    }
    // Stable: among equally specific globs, the one written first wins.
    this.globs.sort((a, b) => b.specificity - a.specificity)
  }

  /** The entry for a model: its exact name, else the most specific glob; a "provider/" prefix is tried both ways. */
  match(name: string): T | undefined {
    const known = this.matched.get(name)
    if (known !== undefined) return known ?? undefined
    const value = this.lookup(name)
    if (this.matched.size >= MATCHED_MAX) this.matched.clear()
    this.matched.set(name, value ?? null)
    return value
  }

  private lookup(name: string): T | undefined {
    const lower = name.toLowerCase()
    const bare = lower.includes('/') ? lower.slice(lower.lastIndexOf('/') + 1) : undefined
    for (const candidate of bare === undefined ? [lower] : [lower, bare]) {
      const hit = this.exact.get(candidate)
      if (hit !== undefined) return hit
    }
    for (const glob of this.globs) {
      if (glob.re.test(lower) || (bare !== undefined && glob.re.test(bare))) return glob.value
    }
    return undefined
  }
}
